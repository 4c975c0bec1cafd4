#!/usr/bin/env python3
"""rpt_check.py REPORT.json POLICY-TYPE RESULT [POLICY-STRING-PREFIX]

Checks one RFC 8460 report (as `tlsrpt report` prints it): some policy of type POLICY-TYPE
("sts", "tlsa", "no-policy-found") counted RESULT ("success": a successful session; else a
failure-details entry of that result-type), and, when given, one of its policy-string lines
starts with POLICY-STRING-PREFIX. Exit 0 when it did; else 1 with the reason."""
import json
import sys


def main():
    path, ptype, result = sys.argv[1:4]
    prefix = sys.argv[4] if len(sys.argv) > 4 else None
    with open(path, encoding="utf-8") as f:
        rep = json.load(f)
    seen = []
    for p in rep.get("policies", []):
        pol = p.get("policy", {})
        seen.append(pol.get("policy-type"))
        if pol.get("policy-type") != ptype:
            continue
        if prefix and not any(s.startswith(prefix) for s in pol.get("policy-string", [])):
            continue
        if result == "success":
            if p.get("summary", {}).get("total-successful-session-count", 0) > 0:
                return 0
        elif any(d.get("result-type") == result for d in p.get("failure-details", [])):
            return 0
    print(f"no {ptype} policy counting {result} (policies: {seen})")
    return 1


if __name__ == "__main__":
    sys.exit(main())
