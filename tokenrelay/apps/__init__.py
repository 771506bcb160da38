"""The apps on top of the stack: the ``tokenrelay`` command (cli), its status and inspect
views and the demo. They import producers, workers, the store and the sandbox; nothing imports
them."""
