# Runs the shared protocol vectors. Works on CPython and on MicroPython, so both
# interpreters are held to the same contract:
#   micropython check_vectors.py <vectors-dir>   (with MICROPYPATH naming protocol/)
# It prints one line per failure and a closing "N passed, N failed" line.

import binascii
import json
import sys


def _payload(case):
    if "payload" in case:
        return case["payload"].encode("utf-8")
    if "payload_hex" in case:
        return bytes(int(h, 16) for h in case["payload_hex"].split())
    if "oversize" in case:
        return b'{"v": 1, "pad": "' + b"x" * case["oversize"] + b'"}'
    return json.dumps(case["message"]).encode("utf-8")


def _bytes_problem(msg):
    """The base64 fields decode as a board would decode them: a bmp to exactly
    h rows of ceil(w / 8) bytes, ESC/POS (print.escpos, block.head) starting with ESC @."""
    bmp = msg.get("bmp")
    if bmp is not None:
        data = binascii.a2b_base64(bmp["b"])
        if len(data) != (bmp["w"] + 7) // 8 * bmp["h"]:
            return "bmp is not a w x h MONO_HLSB buffer"
    for name in ("escpos", "head"):
        if name in msg and binascii.a2b_base64(msg[name])[:2] != b"\x1b@":
            return name + " does not start with ESC @"
    return None


def run(proto, vectors_dir):
    passed = 0
    failures = []
    with open(vectors_dir + "/valid.json") as f:
        valid = json.load(f)
    with open(vectors_dir + "/invalid.json") as f:
        invalid = json.load(f)
    for case in valid:
        try:
            got = proto.decode(case["kind"], _payload(case))
            again = proto.decode(case["kind"], proto.encode(case["kind"], dict(got)))
            if got != case["message"] or again != got:
                failures.append(case["name"] + ": decoded message differs")
            elif "topic" in case and proto.parse_topic(case["topic"]) is None:
                failures.append(case["name"] + ": topic does not parse")
            elif _bytes_problem(got):
                failures.append(case["name"] + ": " + _bytes_problem(got))
            else:
                passed += 1
        except proto.ProtocolError as e:
            failures.append(case["name"] + ": rejected with " + e.code + " (" + e.msg + ")")
    for case in invalid:
        try:
            proto.decode(case["kind"], _payload(case))
            failures.append(case["name"] + ": accepted, expected " + case["code"])
        except proto.ProtocolError as e:
            if e.code == case["code"]:
                passed += 1
            else:
                failures.append(case["name"] + ": got " + e.code + ", expected " + case["code"])
    with open(vectors_dir + "/versions.json") as f:
        versions = json.load(f)
    for a, b, later in versions:  # firmware version order (OTA refuses to go back)
        if proto.newer(a, b) == later:
            passed += 1
        else:
            failures.append("newer(%s, %s) should be %s" % (a, b, later))
    return passed, failures


def report(passed, failures):
    """The scripts' output and exit status (check_device.py ends with it too)."""
    for line in failures:
        print("FAIL", line)
    print(str(passed) + " passed, " + str(len(failures)) + " failed")
    sys.exit(1 if failures else 0)


def main():
    import ow_protocol

    report(*run(ow_protocol, sys.argv[1]))


if __name__ == "__main__":
    main()
