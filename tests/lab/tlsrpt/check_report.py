#!/usr/bin/env python3
"""check_report.py - checks one TLS report (RFC 8460) as a receiver would get it.

    check_report.py mail FILE DOMAIN ORG CONTACT DAY   a message: multipart/report,
                                                       report-type="tlsrpt", TLS-Report-Domain and
                                                       TLS-Report-Submitter, a JSON attachment
    check_report.py json FILE DOMAIN ORG CONTACT DAY   a POSTed body: the JSON alone

The JSON must carry RFC 8460 §4.4's fields: organization-name, date-range (start-datetime,
end-datetime: the UTC day), contact-info, report-id, policies[] with policy (policy-type,
policy-string, policy-domain), summary (total-successful-session-count,
total-failure-session-count) and failure-details (result-type, counts). Prints the report's
summary line per policy; exits 1 with the reason on the first problem.
"""
import email
import email.policy
import json
import sys

RESULT_TYPES = {
    "starttls-not-supported", "certificate-host-mismatch", "certificate-expired",
    "certificate-not-trusted", "validation-failure", "tlsa-invalid", "dnssec-invalid",
    "dane-required", "sts-policy-fetch-error", "sts-policy-invalid", "sts-webpki-invalid",
}


def die(msg):
    print("FAIL:", msg)
    sys.exit(1)


def check_json(data, domain, org, contact, day):
    try:
        rep = json.loads(data)
    except ValueError as e:
        die("the report is not JSON: %s" % e)
    for k in ("organization-name", "date-range", "contact-info", "report-id", "policies"):
        if k not in rep:
            die("no %s" % k)
    if rep["organization-name"] != org:
        die("organization-name %r, want %r" % (rep["organization-name"], org))
    if rep["contact-info"] != contact:
        die("contact-info %r, want %r" % (rep["contact-info"], contact))
    dr = rep["date-range"]
    if dr.get("start-datetime") != day + "T00:00:00Z":
        die("start-datetime %r" % dr.get("start-datetime"))
    end = dr.get("end-datetime", "")
    if not end.endswith("T00:00:00Z") and not end.endswith("T23:59:59Z"):
        die("end-datetime %r" % end)
    if not isinstance(rep["report-id"], str) or not rep["report-id"]:
        die("empty report-id")
    if not isinstance(rep["policies"], list) or not rep["policies"]:
        die("no policies")
    total_ok = total_fail = 0
    for p in rep["policies"]:
        pol = p.get("policy") or die("a policies[] entry without policy")
        if pol.get("policy-type") not in ("sts", "tlsa", "no-policy-found"):
            die("policy-type %r" % pol.get("policy-type"))
        if pol.get("policy-domain") != domain:
            die("policy-domain %r, want %r" % (pol.get("policy-domain"), domain))
        if pol["policy-type"] != "no-policy-found" and not isinstance(pol.get("policy-string"), list):
            die("policy-string is not a list")
        summ = p.get("summary") or die("no summary")
        ok = summ.get("total-successful-session-count")
        fail = summ.get("total-failure-session-count")
        if not isinstance(ok, int) or not isinstance(fail, int) or ok < 0 or fail < 0:
            die("bad summary %r" % summ)
        nfail = 0
        for fd in p.get("failure-details", []):
            if fd.get("result-type") not in RESULT_TYPES:
                die("result-type %r" % fd.get("result-type"))
            n = fd.get("failed-session-count")
            if not isinstance(n, int) or n < 1:
                die("failed-session-count %r" % n)
            nfail += n
        if nfail != fail:
            die("failure-details add up to %d, the summary says %d" % (nfail, fail))
        total_ok += ok
        total_fail += fail
        print("policy %s %s: %d successful, %d failed%s" % (
            pol["policy-type"], domain, ok, fail,
            "".join(" [%s x%d]" % (fd["result-type"], fd["failed-session-count"])
                    for fd in p.get("failure-details", []))))
    return rep, total_ok, total_fail


def check_mail(path, domain, org, contact, day):
    with open(path, "rb") as f:
        msg = email.message_from_binary_file(f, policy=email.policy.default)
    if msg.get_content_type() != "multipart/report":
        die("Content-Type %s" % msg.get_content_type())
    if msg.get_param("report-type") != "tlsrpt":
        die("report-type %r" % msg.get_param("report-type"))
    if msg["TLS-Report-Domain"] != domain:
        die("TLS-Report-Domain %r" % msg["TLS-Report-Domain"])
    if msg["TLS-Report-Submitter"] != org:
        die("TLS-Report-Submitter %r" % msg["TLS-Report-Submitter"])
    parts = [p for p in msg.iter_parts() if p.get_content_type() == "application/tlsrpt+json"]
    if len(parts) != 1:
        die("%d application/tlsrpt+json parts" % len(parts))
    if not (parts[0].get_filename() or "").endswith(".json"):
        die("attachment file name %r" % parts[0].get_filename())
    return check_json(parts[0].get_payload(decode=True), domain, org, contact, day)


def main():
    if len(sys.argv) != 7 or sys.argv[1] not in ("mail", "json"):
        print(__doc__)
        sys.exit(2)
    kind, path, domain, org, contact, day = sys.argv[1:]
    if kind == "mail":
        rep, ok, fail = check_mail(path, domain, org, contact, day)
    else:
        with open(path, "rb") as f:
            rep, ok, fail = check_json(f.read(), domain, org, contact, day)
    print("report %s: %d successful, %d failed" % (rep["report-id"], ok, fail))


main()
