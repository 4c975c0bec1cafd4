# tests/lab/lib/web.sh: the MTA-STS policy hosts (nginx, one server block per mta-sts.<domain>,
# chosen by SNI) and the HTTP CONNECT proxy (tinyproxy). Sourced by lab.sh.
#
# Under $LAB_DIR/web: nginx.conf, nginx.pid, error.log, access.log, temp dirs, posts/<host>/
# (the bodies POSTed to an HTTPS sink);
# tinyproxy.conf, tinyproxy.pid, tinyproxy.log.
# Under $LAB_DIR/www/<domain>/.well-known/: the policy files. Tests may rewrite or remove
# mta-sts.txt while the lab runs: nginx serves it from disk on every request.
#
# Policy behaviours (the scenario's `policy` line):
#   ok         200, text/plain, the policy
#   404 / 500  that status
#   301        redirect to /.well-known/mta-sts-moved.txt, which serves the policy (200): a
#              client that follows redirects would wrongly succeed
#   type       200, the policy as text/html
#   biglen     200, text/plain, the policy then padding lines: 100000 bytes, Content-Length set
#   bigchunk   200, text/plain, the policy then padding lines: 100000 bytes, chunked, no length
#   stall      accepts the request, sends nothing for 600 s
#   slowbody   sends headers and the first line of the policy, then nothing for 600 s
#   expired, untrusted, wrongname, nochain: like ok, with that kind of certificate
#   refused    mta-sts.<domain> points at an address where nothing listens (no server block)
#   none       no policy host: mta-sts.<domain> does not exist
# shellcheck shell=bash

web_dir() { printf '%s\n' "$LAB_DIR/web"; }

# web_nginx_string FILE: FILE's bytes as an nginx quoted string (for the echo module).
# nginx has no escape for "$" in such strings: the lab's policies never contain one.
web_nginx_string() {
    grep -q '[$]' "$1" && lab_die "$1: policy text with '\$' cannot be served chunked"
    sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\r/\\r/g' "$1" | awk '{ printf "%s\\n", $0 }'
}

# web_server DOMAIN BEHAVIOUR: one nginx server block.
web_server() {
    local d=$1 beh=$2 p www policy body
    p="$LAB_DIR/pki"
    www="$LAB_DIR/www/$d"
    policy="$www/.well-known/mta-sts.txt"
    cat <<EOF
    server {
        listen $LAB_POLICY_ADDR:443 ssl;
        server_name mta-sts.$d;
        ssl_certificate $p/policy-$d.chain.pem;
        ssl_certificate_key $p/policy-$d.key;
        root $www;
EOF
    case "$beh" in
    ok | expired | untrusted | wrongname | nochain)
        echo '        location = /.well-known/mta-sts.txt { default_type text/plain; }'
        ;;
    404) echo '        location = /.well-known/mta-sts.txt { return 404; }' ;;
    500) echo '        location = /.well-known/mta-sts.txt { return 500; }' ;;
    301)
        cp "$policy" "$www/.well-known/mta-sts-moved.txt"
        echo "        location = /.well-known/mta-sts.txt { return 301 https://mta-sts.$d/.well-known/mta-sts-moved.txt; }"
        echo '        location = /.well-known/mta-sts-moved.txt { default_type text/plain; }'
        ;;
    type) echo '        location = /.well-known/mta-sts.txt { default_type text/html; }' ;;
    biglen)
        web_pad "$policy" >"$www/.well-known/mta-sts-big.txt"
        echo '        location = /.well-known/mta-sts.txt { default_type text/plain; try_files /.well-known/mta-sts-big.txt =404; }'
        ;;
    bigchunk)
        body=$(web_nginx_string "$policy")
        cat <<EOF
        location = /.well-known/mta-sts.txt {
            default_type text/plain;
            echo -n "$body";
            echo_flush;
            echo_duplicate 1600 "x-pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\\n";
        }
EOF
        ;;
    stall)
        cat <<EOF
        location = /.well-known/mta-sts.txt {
            default_type text/plain;
            echo_sleep 600;
            echo "version: STSv1";
        }
EOF
        ;;
    slowbody)
        cat <<EOF
        location = /.well-known/mta-sts.txt {
            default_type text/plain;
            echo "version: STSv1";
            echo_flush;
            echo_sleep 600;
            echo "mode: enforce";
        }
EOF
        ;;
    *) lab_die "web_server: unknown behaviour $beh" ;;
    esac
    echo '        location / { return 404; }'
    echo '    }'
}

# web_sink HOST: https://HOST/ accepts POST (any path) and keeps each body as a file in
# $LAB_DIR/web/posts/HOST/ (nginx's request-body files, kept by client_body_in_file_only).
web_sink() {
    local h=$1 dir
    dir="$(web_dir)/posts/$h"
    mkdir -p "$dir"
    chown nobody:nogroup "$dir"
    cat <<EOF
    server {
        listen $LAB_POLICY_ADDR:443 ssl;
        server_name $h;
        ssl_certificate $LAB_DIR/pki/sink-$h.chain.pem;
        ssl_certificate_key $LAB_DIR/pki/sink-$h.key;
        client_body_in_file_only on;
        client_body_temp_path $dir;
        client_max_body_size 16m;
        location / {
            if (\$request_method != POST) { return 405; }
            default_type text/plain;
            echo_read_request_body;
            echo "stored";
        }
    }
EOF
}

# web_pad POLICY: the policy, then well-formed padding lines up to 100000 bytes.
web_pad() {
    cat "$1"
    local line="x-pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
    local i
    for ((i = 0; i < 1600; i++)); do printf '%s\n' "$line"; done
}

web_build() {
    local w d beh
    w=$(web_dir)
    mkdir -p "$w/tmp"
    chmod 755 "$LAB_DIR" "$LAB_DIR/www"
    find "$LAB_DIR/www" -type d -exec chmod 755 {} + -o -type f -exec chmod 644 {} +
    {
        cat <<EOF
# The lab's MTA-STS policy hosts. Generated by scripts/lab up; do not edit.
load_module /usr/lib/nginx/modules/ngx_http_echo_module.so;
user nobody nogroup;
worker_processes 1;
pid $w/nginx.pid;
error_log $w/error.log info;
events { worker_connections 256; }
http {
    access_log $w/access.log;
    client_body_temp_path $w/tmp/body;
    proxy_temp_path $w/tmp/proxy;
    fastcgi_temp_path $w/tmp/fastcgi;
    uwsgi_temp_path $w/tmp/uwsgi;
    scgi_temp_path $w/tmp/scgi;
    types { }
    default_type application/octet-stream;
    sendfile on;
    keepalive_timeout 5;
    ssl_protocols TLSv1.2 TLSv1.3;
    # A client without SNI, or with an unknown name, gets this: no policy host has that name.
    server {
        listen $LAB_POLICY_ADDR:443 ssl default_server;
        ssl_certificate $LAB_DIR/pki/policy-default.chain.pem;
        ssl_certificate_key $LAB_DIR/pki/policy-default.key;
        return 421;
    }
EOF
        while read -r _ d beh; do
            case "$beh" in none | refused) continue ;; esac
            web_server "$d" "$beh"
        done < <(grep '^policy ' "$LAB_DIR/manifest")
        while read -r _ d; do web_sink "$d"; done < <(grep '^sink ' "$LAB_DIR/manifest")
        echo '}'
    } >"$w/nginx.conf"
    find "$LAB_DIR/www" -type f -exec chmod 644 {} +
    pki_leaf policy-default inter default.policy.stslab
    nginx -t -q -c "$w/nginx.conf" -e "$w/error.log" || lab_die "nginx.conf does not check"

    cat >"$w/tinyproxy.conf" <<EOF
# The lab's HTTP CONNECT proxy. Generated by scripts/lab up; do not edit.
User nobody
Group nogroup
Listen $LAB_PROXY_ADDR
Port $LAB_PROXY_PORT
Timeout 60
PidFile "$w/tinyproxy.pid"
LogFile "$w/tinyproxy.log"
LogLevel Info
MaxClients 50
Allow 127.0.0.0/8
ConnectPort 443
DisableViaHeader Yes
EOF
    : >"$w/tinyproxy.log"
    chown nobody:nogroup "$w/tinyproxy.log"
}

web_start() {
    local w
    w=$(web_dir)
    lab_ns nginx -c "$w/nginx.conf" -e "$w/error.log" || lab_die "nginx did not start (see $w/error.log)"
    lab_wait_file "$w/nginx.pid" 10 || lab_die "nginx wrote no pid file"
    lab_pid_add nginx "$(cat "$w/nginx.pid")"
    lab_ns tinyproxy -c "$w/tinyproxy.conf" || lab_die "tinyproxy did not start (see $w/tinyproxy.log)"
    lab_wait_file "$w/tinyproxy.pid" 10 || lab_die "tinyproxy wrote no pid file"
    lab_pid_add tinyproxy "$(cat "$w/tinyproxy.pid")"
}
