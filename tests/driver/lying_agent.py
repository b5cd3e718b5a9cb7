#!/usr/bin/python3
"""A lying ssh-agent for tests: it listens on LISTEN, passes every request to
the real agent at UPSTREAM, and lies about signatures.

    lying_agent.py LISTEN UPSTREAM alter|replay

alter:  flips one byte near the end of every signature it passes back.
replay: passes the first signature back, then answers every later signing
        request with that same first signature.

Run as the person (the daemon checks who runs the agent it is handed).
"""
import os
import socket
import struct
import sys

SIGN_RESPONSE = 14


def read_message(sock):
    head = b""
    while len(head) < 4:
        chunk = sock.recv(4 - len(head))
        if not chunk:
            return None
        head += chunk
    (length,) = struct.unpack(">I", head)
    body = b""
    while len(body) < length:
        chunk = sock.recv(length - len(body))
        if not chunk:
            return None
        body += chunk
    return body


def send_message(sock, body):
    sock.sendall(struct.pack(">I", len(body)) + body)


def main():
    listen, upstream, mode = sys.argv[1:4]
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(listen)
    os.chmod(listen, 0o600)
    server.listen(4)
    first_signature = None
    while True:
        client, _ = server.accept()
        with client, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as real:
            real.connect(upstream)
            while True:
                request = read_message(client)
                if request is None:
                    break
                send_message(real, request)
                answer = read_message(real)
                if answer is None:
                    break
                if answer[:1] == bytes([SIGN_RESPONSE]):
                    if mode == "alter":
                        answer = answer[:-8] + bytes([answer[-8] ^ 0x01]) + answer[-7:]
                    elif first_signature is None:
                        first_signature = answer
                    else:
                        answer = first_signature
                send_message(client, answer)


if __name__ == "__main__":
    main()
