"""``python -m runner``: the same as ``pocketwatcher run``."""

if __name__ == "__main__":  # not when a spawned child process imports this module
    from pocketwatcher.cli import app

    app(["run", *__import__("sys").argv[1:]])
