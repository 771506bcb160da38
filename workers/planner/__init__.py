"""The pure planner (no I/O): ``delivery`` turns text + sent state + channel limits into the
sends and edits to make, ``split`` chooses where an overlong segment is cut and counts length
in a platform's units. Channel clients and the flush pass both use it; it imports neither."""
