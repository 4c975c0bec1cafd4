#!/usr/bin/env bash
# clientcert.sh - the certificate stsgated presents when a receiver asks for one (destconfig SETUP
# "Please choose the certificate to use for outbound TLS"). Every STARTTLS receiver of the lab asks
# for a client certificate (not required) and names the one it got in its Received header:
#  1. the factory choice, Demo (CN "stsgate Demo"), is presented;
#  2. a profile pasted with certconfig (its issuing CA as the intermediate) and chosen in SETUP,
#     committed while the agent runs, is presented from the next connection on.
PORT=2615
. "$(dirname "$0")/lib.sh"
D=valid.plain.stslab

# received_client RCPT: the "(Client CN ..., Issuer ...)" part of the receiver's Received header.
received_client() {
    local f
    f=$("$BIN/lab-messages" valid --to "$1" | head -n 1)
    [ -n "$f" ] || return 0
    # the header part, unfolded: continuation lines join with one space
    tr -d '\r' <"$f" | sed '/^$/q' | tr '\n\t' '  ' | tr -s ' ' | grep -o '(Client CN [^()]*([^()]*))' | head -n 1
}

# presents LABEL CN ISSUER: one message through the agent; the receiver saw that certificate.
presents() {
    local rcpt="$1-$TAG@$D" got
    send "$rcpt"
    "$BIN/lab-wait" valid 1 --to "$rcpt" --timeout 30 >/dev/null || { fail "$1: not delivered"; return; }
    got=$(received_client "$rcpt")
    [[ $got == "(Client CN \"$2\", Issuer \"$3\" (not verified))" ]] ||
        fail "$1: the receiver saw ${got:-no client certificate}"
}

{
    ca_script
    dest_script new "$D" 2
} | configure "Demo"
start_agent
presents demo "stsgate Demo" "stsgate Demo"

# A client certificate issued by a CA of our own, pasted with that CA as its intermediate.
openssl req -x509 -newkey rsa:2048 -nodes -subj "/CN=Outbound Test CA" -days 30 \
    -keyout "$ROOT/ca.key" -out "$ROOT/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj "/CN=outbound.sender.test" \
    -keyout "$ROOT/client.key" -out "$ROOT/client.csr" 2>/dev/null
openssl x509 -req -in "$ROOT/client.csr" -CA "$ROOT/ca.pem" -CAkey "$ROOT/ca.key" \
    -CAcreateserial -days 30 -out "$ROOT/client.pem" 2>/dev/null
{
    printf 'certconfig\ncertificate\npaste\nlabclient\n'
    cat "$ROOT/client.pem"
    printf '.\n'
    cat "$ROOT/client.key"
    printf '.\ny\n'
    cat "$ROOT/ca.pem"
    printf '.\nn\n\n\n'
    printf 'destconfig\nsetup\n2\nn\nn\nn\n\n' # certificates: 1. Demo, 2. labclient
} | configure_live "labclient"
presents labclient outbound.sender.test "Outbound Test CA"
no_log "Delayed: "
finish
