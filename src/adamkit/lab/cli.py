"""The ``adamkit`` command line (also ``python -m adamkit``): one module per command."""

import argparse
import signal
import sys
import threading

from adamkit.lab.commands import advise, compare, demo, run, sweep, tasks
from adamkit.lab.commands.common import Terminated, UsageError

COMMANDS = (demo, tasks, run, compare, sweep, advise)


def parser():
    p = argparse.ArgumentParser(prog="adamkit", description="adamkit lab: see how optimizers, weight decay, "
                                "initialization and schedules change training.")
    sub = p.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.add_parser(sub)
    return p


def _terminate(signum, frame):
    raise Terminated()


def main(argv=None):
    for stream in (sys.stdout, sys.stderr):  # an ASCII locale must not fail on "×" or "±"
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parser().parse_args(argv)
    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if main_thread else None
    try:
        return args.func(args)
    except UsageError as e:
        print(f"adamkit: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:
        print("\nadamkit: " + ("terminated" if isinstance(e, Terminated) else "interrupted")
              + "; no results were written", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
    finally:
        if main_thread:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
