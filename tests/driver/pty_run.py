#!/usr/bin/python3
"""Run a command under a pseudo-terminal, answering its prompts.

    pty_run.py [--answer TEXT]... [--timeout SECONDS] -- COMMAND [ARG]...

Each time the command prints a prompt ending in ": " that asks for a code or
password, the next --answer is typed (then Enter). With no answers left the
prompt is answered with an empty line. Prints the whole
transcript, then "exit=N" with the command's exit status.

Uses Debian's python3-pexpect with the system python, so an unprivileged
test user can run it too.
"""
import argparse
import sys

import pexpect

PROMPTS = [r"Verification code: ", r"[Pp]assword[^:]*: "]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--answer", action="append", default=[])
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    # Bytes that are not UTF-8 (a command printing them) must not end the run.
    child = pexpect.spawn(
        command[0], command[1:], timeout=args.timeout, encoding="utf-8", codec_errors="replace"
    )
    transcript = []
    answers = list(args.answer)
    while True:
        i = child.expect(PROMPTS + [pexpect.EOF, pexpect.TIMEOUT])
        transcript.append(child.before + (child.after if isinstance(child.after, str) else ""))
        if i < len(PROMPTS):
            child.sendline(answers.pop(0) if answers else "")
        elif i == len(PROMPTS):
            break
        else:
            transcript.append("\n<timeout>\n")
            child.terminate(force=True)
            break
    child.close()
    sys.stdout.write("".join(transcript))
    status = child.exitstatus if child.exitstatus is not None else 128 + (child.signalstatus or 0)
    sys.stdout.write(f"\nexit={status}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
