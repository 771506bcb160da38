"""Task names both sides use: producers enqueue by name, workers register by name (a leaf
module, so producers never import the worker stack)."""

#: the stop task: final pass, then the StopResult (seen by that name in Flower)
STOP = "tokenrelay.stop_stream"
