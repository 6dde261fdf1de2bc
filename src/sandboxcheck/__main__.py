"""``python -m sandboxcheck``: the same as the ``sandboxcheck`` command."""
from sandboxcheck._entry import main

if __name__ == "__main__":
    main()
