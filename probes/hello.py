"""Prove the probe interpreter runs: print a marker joined from its parts."""
import sys
from _probe import args, emit

a = args(sys.argv[1:], {"left": None, "right": None})
# The marker exists only once the interpreter has run this line.
emit("hello", "run the probe interpreter", True, marker=a["left"] + "-" + a["right"])
