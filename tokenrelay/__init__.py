"""tokenrelay's shared rooms: the base (settings, accounts, results, ids, task names, backoff,
redaction) in this package's modules, the store in ``tokenrelay.store``, the channel specs in
``tokenrelay.specs`` and the apps (the ``tokenrelay`` command) in ``tokenrelay.apps``.

The base imports nothing else of the project; see docs/ARCHITECTURE.md for the layer order.
"""
