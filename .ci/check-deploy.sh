#!/usr/bin/env bash
# Checks the deployment files offline (no network, no Docker daemon), one line per check:
#   - docker-compose.yml: `docker-compose config -q` for every profile in the file (and all of them together), and
#     the rules every service keeps: a health check, restart: unless-stopped, CPU and memory limits, json-file logs
#     with rotation, named volumes for Redis and MariaDB, pinned images;
#   - docker/nginx/bridge.conf.template: rendered as the nginx image renders it (envsubst of its own variables
#     only, with the values compose gives the nginx service), then `nginx -t` with a throw-away self-signed
#     certificate, then a smoke test of the running config against a stub bridge (redirect, ACME, TLS + HTTP/2,
#     proxy headers, body limits, /metrics refused, SSE streamed, an OA passive hold of 5.6 s);
#   - deploy/prometheus/alerts.yml: `promtool check rules` and `promtool test rules` (alerts.test.yml); the
#     dashboard's queries parse as PromQL (`promtool check rules` on them as recording rules);
#   - deploy/grafana/wechat-ai-bridge.json and the alert rules name only real metrics, and every alert has a
#     runbook in docs/metrics.md: test/deploy-observability.test.ts (vitest; needs `npm ci`).
# Needs: docker-compose (Debian 1.29 or Compose v2 as docker-compose), nginx, promtool (Debian `prometheus`),
# openssl, envsubst (gettext-base), curl, node. Run from anywhere: `.ci/check-deploy.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."

ok() { printf 'ok    %s\n' "$1"; }
fail() { printf 'FAIL  %s\n' "$1" >&2; exit 1; }

for tool in docker-compose nginx promtool openssl envsubst curl node; do
  command -v "$tool" >/dev/null || fail "$tool is not installed (apt-get install docker-compose nginx prometheus openssl gettext-base curl)"
done

work=$(mktemp -d)
created_env=0
nginx_pid=""
stub_pid=""
cleanup() {
  if [ -n "$nginx_pid" ]; then kill "$nginx_pid" 2>/dev/null || true; fi
  if [ -n "$stub_pid" ]; then kill "$stub_pid" 2>/dev/null || true; fi
  rm -rf "$work"
  if [ "$created_env" = 1 ]; then rm -f .env; fi
}
trap cleanup EXIT

# docker-compose reads .env for interpolation and env_file needs one: borrow .env.example when there is none.
# An existing .env (a developer's, or CI's hostile one) is used as it is and never touched.
if [ ! -f .env ]; then
  cp .env.example .env
  created_env=1
fi

# The Python that runs Debian's docker-compose has PyYAML (compose needs it); any python3 with yaml will do.
py=$(sed -n '1s/^#! *//p' "$(command -v docker-compose)" | awk '{print $1}')
if ! [ -x "${py:-/nonexistent}" ] || ! "$py" -c 'import yaml' 2>/dev/null; then py=python3; fi
"$py" -c 'import yaml' 2>/dev/null || fail "no python3 with PyYAML (python3-yaml) to read the compose file"

compose() { docker-compose -f docker-compose.yml "$@"; }

# --- docker-compose.yml ------------------------------------------------------------------------------------------
profiles=$("$py" - <<'EOF'
import yaml
doc = yaml.safe_load(open('docker-compose.yml'))
print(' '.join(sorted({p for s in doc['services'].values() for p in s.get('profiles', [])})))
EOF
)
[ -n "$profiles" ] || fail "docker-compose.yml declares no profiles (expected at least workers and tls)"
for expected in workers tls; do
  case " $profiles " in *" $expected "*) ;; *) fail "docker-compose.yml has no profile $expected" ;; esac
done
compose config -q || fail "docker-compose config (no profile)"
ok "docker-compose config (no profile)"
all_profiles=()
for p in $profiles; do
  compose --profile "$p" config -q || fail "docker-compose --profile $p config"
  ok "docker-compose --profile $p config"
  all_profiles+=(--profile "$p")
done
compose "${all_profiles[@]}" config > "$work/compose.yml" || fail "docker-compose config with every profile"
ok "docker-compose config with every profile ($profiles)"

"$py" - "$work/compose.yml" <<'EOF' || fail "docker-compose.yml service rules"
import re, sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
problems = []
for name, s in sorted(doc['services'].items()):
    hc = s.get('healthcheck') or {}
    if hc.get('disable') or not hc.get('test') or hc.get('test') == ['NONE']:
        problems.append(f'{name}: no healthcheck')
    if s.get('restart') != 'unless-stopped':
        problems.append(f'{name}: restart is {s.get("restart")!r}, not unless-stopped')
    limits = ((s.get('deploy') or {}).get('resources') or {}).get('limits') or {}
    if not (limits.get('memory') or s.get('mem_limit')):
        problems.append(f'{name}: no memory limit')
    if not (limits.get('cpus') or s.get('cpus')):
        problems.append(f'{name}: no cpus limit')
    log = s.get('logging') or {}
    opts = log.get('options') or {}
    if log.get('driver') != 'json-file' or not opts.get('max-size') or not opts.get('max-file'):
        problems.append(f'{name}: logging is not json-file with max-size and max-file')
    image = s.get('image')
    if image and (':' not in image.rsplit('/', 1)[-1] or image.endswith(':latest')):
        problems.append(f'{name}: image {image} is not pinned to a version')
for name, target in (('redis', '/data'), ('mysql', '/var/lib/mysql')):
    vols = doc['services'].get(name, {}).get('volumes') or []
    named = [v for v in vols if isinstance(v, str) and not v.startswith(('/', '.')) and v.split(':')[1] == target]
    if not named:
        problems.append(f'{name}: {target} is not on a named volume')
    elif named[0].split(':')[0] not in (doc.get('volumes') or {}):
        problems.append(f'{name}: volume {named[0].split(":")[0]} is not declared')
if 'nginx' not in doc['services'] or doc['services']['nginx'].get('profiles') != ['tls']:
    problems.append('nginx: missing, or not only in the tls profile')
for p in problems:
    print('  ' + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
ok "every service: healthcheck, restart unless-stopped, cpus+memory limits, json-file log rotation, pinned image; named volumes for redis and mysql"

# --- nginx template: render as the nginx image does ---------------------------------------------------------------
template=docker/nginx/bridge.conf.template
# The values compose gives the nginx service (with .env's interpolation), and NGINX_ENVSUBST_FILTER.
"$py" - "$work/compose.yml" "$template" > "$work/nginx.env" <<'EOF' || fail "nginx template variables vs. the compose nginx service"
import re, shlex, sys, yaml
svc = yaml.safe_load(open(sys.argv[1]))['services']['nginx']
env = svc.get('environment') or {}
if isinstance(env, list):
    env = dict(e.split('=', 1) for e in env)
env = {k: str(v).replace('$$', '$') for k, v in env.items()}
used = sorted(set(re.findall(r'\$\{([A-Z][A-Z0-9_]*)\}', open(sys.argv[2]).read())))
flt = env.get('NGINX_ENVSUBST_FILTER', '')
problems = []
if not flt:
    problems.append('NGINX_ENVSUBST_FILTER is not set: the image would substitute every environment variable')
for name in used:
    if name not in env:
        problems.append(f'the template uses ${{{name}}} but the nginx service does not set {name}')
    elif flt and not re.search(flt, name):
        problems.append(f'NGINX_ENVSUBST_FILTER does not let {name} through')
for name in env:
    if flt and re.search(flt, name) and name not in used:
        problems.append(f'NGINX_ENVSUBST_FILTER lets {name} through but the template does not use it')
mounts = [v for v in svc.get('volumes') or [] if isinstance(v, str) and v.endswith('/etc/nginx/templates/default.conf.template:ro')]
if not mounts:
    problems.append('the template is not mounted as /etc/nginx/templates/default.conf.template')
for p in problems:
    print('  ' + p, file=sys.stderr)
if problems:
    sys.exit(1)
for name in used:
    print(f'{name}={shlex.quote(env[name])}')
EOF
vars=$(cut -d= -f1 "$work/nginx.env" | sed 's/.*/${&}/' | tr '\n' ' ')
ok "nginx template variables ($(cut -d= -f1 "$work/nginx.env" | tr '\n' ' ' | sed 's/ $//')) are set by compose and let through by NGINX_ENVSUBST_FILTER"

# render <file> [NAME=value overrides…]: envsubst of the template's own variables only (as the image does).
render() {
  local out=$1; shift
  ( set -a; . "$work/nginx.env"; for kv in "$@"; do export "${kv?}"; done; envsubst "$vars" < "$template" ) > "$out"
}
render "$work/bridge.conf"
if grep -n '\${' "$work/bridge.conf" >&2; then fail "the rendered nginx config still holds \${…}"; fi
# nginx's own variables must survive the rendering untouched.
before=$(grep -o '\$[a-z_][a-z0-9_]*' "$template" | sort | uniq -c)
after=$(grep -o '\$[a-z_][a-z0-9_]*' "$work/bridge.conf" | sort | uniq -c)
[ "$before" = "$after" ] || fail "rendering changed nginx's own \$variables"
ok "nginx template rendered (nginx's own \$variables untouched)"

# The running config's promises, read from the rendered file.
"$py" - "$work/bridge.conf" <<'EOF' || fail "nginx config content"
import re, sys
conf = open(sys.argv[1]).read()
problems = []
def location(spec):
    m = re.search(r'location\s+' + re.escape(spec) + r'\s*\{(.*?)\n\s*\}', conf, re.S)
    if not m:
        problems.append(f'no "location {spec}"')
        return ''
    return m.group(1)
def seconds(v):
    m = re.fullmatch(r'(\d+)(ms|s|m|h)?', v)
    return int(m.group(1)) * {None: 1, 's': 1, 'ms': 0.001, 'm': 60, 'h': 3600}[m.group(2)]
if not re.search(r'listen\s+443\s+ssl\s+http2', conf): problems.append('no "listen 443 ssl http2"')
if not re.search(r'ssl_protocols\s+TLSv1\.2\s+TLSv1\.3;', conf): problems.append('ssl_protocols is not TLSv1.2 TLSv1.3')
for spec in ('= /wecom/kf/callback', '^~ /wecom/bot/callback/', '= /wechat/mp/callback', '/console', '/admin/', '/v1/', '= /healthz'):
    body = location(spec)
    if body and 'proxy_pass' not in body: problems.append(f'location {spec} does not proxy_pass')
mp = location('= /wechat/mp/callback')
t = re.search(r'proxy_read_timeout\s+(\S+);', mp)
if not t or seconds(t.group(1)) < 10: problems.append('/wechat/mp/callback: proxy_read_timeout under 10 s')
for spec in ('= /admin/events', '= /v1/chat/completions'):
    body = location(spec)
    if 'proxy_buffering off;' not in body: problems.append(f'{spec}: proxy_buffering is not off')
    t = re.search(r'proxy_read_timeout\s+(\S+);', body)
    if not t or seconds(t.group(1)) < 300: problems.append(f'{spec}: proxy_read_timeout under 5 min')
for spec in ('/v1/', '= /v1/chat/completions'):
    if 'client_max_body_size 1m;' not in location(spec): problems.append(f'{spec}: client_max_body_size is not 1m')
metrics = location('= /metrics')
if 'deny all;' not in metrics: problems.append('/metrics is not "deny all" (with an allow-list)')
if not re.search(r'location\s+\^~\s+/\.well-known/acme-challenge/', conf): problems.append('no ACME http-01 location on port 80')
for h in ('X-Forwarded-For', 'X-Real-IP', 'X-Forwarded-Proto'):
    if not re.search(r'proxy_set_header\s+' + h + r'\s', conf): problems.append(f'no proxy_set_header {h}')
if re.search(r'location[^{]*\{[^}]*proxy_set_header', conf): problems.append('a location sets proxy_set_header: it would drop the server-level headers')
for p in problems:
    print('  ' + p, file=sys.stderr)
sys.exit(1 if problems else 0)
EOF
ok "nginx config: 443 ssl http2, TLS 1.2/1.3, callback/console/admin/v1/healthz locations, SSE unbuffered, OA hold >= 10 s, /v1 1m, /metrics denied, ACME, X-Forwarded-*"

# --- nginx -t with a throw-away certificate ---------------------------------------------------------------------
# nginx (master as root) hands the temp paths to its workers' user, which must be able to reach them.
chmod 0755 "$work"
mkdir -p "$work/certs" "$work/acme/.well-known/acme-challenge" "$work/log"
openssl req -x509 -nodes -newkey rsa:2048 -days 1 -subj '/CN=localhost' \
  -keyout "$work/certs/privkey.pem" -out "$work/certs/fullchain.pem" 2>/dev/null || fail "openssl: self-signed certificate"
ok "self-signed certificate for the test (openssl)"

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }
http_port=$(free_port); https_port=$(free_port); stub_port=$(free_port)
# nginx_conf <rendered server file> <out>: a main config that includes it, with every path inside $work and ports
# 80/443 moved to free loopback ports (nginx -t binds them too: no root needed, no clash with a local web server).
nginx_conf() {
  local server=$1 out=$2
  sed -e "s#/etc/nginx/certs/#$work/certs/#g" -e "s#/var/www/acme#$work/acme#g" -e "s#/var/log/nginx/#$work/log/#g" \
    -e "s/listen 80 default_server;/listen 127.0.0.1:$http_port default_server;/" \
    -e "s/listen 443 ssl http2 default_server;/listen 127.0.0.1:$https_port ssl http2 default_server;/" \
    "$server" > "$server.local"
  grep -q "listen 127.0.0.1:$https_port ssl http2 default_server;" "$server.local" || fail "could not move the listen ports of $server"
  grep -q "listen 127.0.0.1:$http_port default_server;" "$server.local" || fail "could not move the listen ports of $server"
  cat > "$out" <<CONF
pid $work/nginx.pid;
error_log $work/log/error.log warn;
worker_processes 1;
events { worker_connections 256; }
http {
  client_body_temp_path $work/tmp/body;
  proxy_temp_path $work/tmp/proxy;
  fastcgi_temp_path $work/tmp/fastcgi;
  uwsgi_temp_path $work/tmp/uwsgi;
  scgi_temp_path $work/tmp/scgi;
  include $server.local;
}
CONF
}
mkdir -p "$work/tmp"
nginx_conf "$work/bridge.conf" "$work/nginx.conf"
nginx -t -q -p "$work/" -e "$work/log/error.log" -c "$work/nginx.conf" || fail "nginx -t on the rendered template"
ok "nginx -t ($(nginx -v 2>&1 | sed 's#.*/##'); certificate and log paths in a temp dir, ports 80/443 on free loopback ports)"

# --- smoke test: the rendered config in front of a stub bridge ----------------------------------------------------
render "$work/smoke.conf" BRIDGE_UPSTREAM="127.0.0.1:$stub_port" METRICS_ALLOW=192.0.2.1 SERVER_NAME=bridge.test
# The stub bridge: echoes what it received as JSON; /admin/events sends one event then holds the stream;
# /wechat/mp/callback holds 5.6 s like an OA passive delivery.
node -e '
const http = require("http");
http.createServer((req, res) => {
  let size = 0;
  req.on("data", (c) => { size += c.length; });
  req.on("end", () => {
    if (req.url === "/admin/events") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.write("data: first\n\n");
      setTimeout(() => res.end("data: last\n\n"), 3000);
      return;
    }
    const answer = () => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ stub: true, url: req.url, method: req.method, size, headers: req.headers }));
    };
    if (req.url.startsWith("/wechat/mp/callback")) setTimeout(answer, 5600); else answer();
  });
}).listen(Number(process.argv[1]), "127.0.0.1");
' "$stub_port" &
stub_pid=$!
nginx_conf "$work/smoke.conf" "$work/nginx-smoke.conf"
nginx -p "$work/" -e "$work/log/error.log" -c "$work/nginx-smoke.conf" -g 'daemon off;' &
nginx_pid=$!
for _ in $(seq 50); do
  kill -0 "$nginx_pid" 2>/dev/null || { cat "$work/log/error.log" >&2; fail "smoke test: nginx did not start"; }
  curl -s -o /dev/null "http://127.0.0.1:$http_port/nginx-health" && curl -s -o /dev/null "http://127.0.0.1:$stub_port/" && break
  sleep 0.1
done

http="http://127.0.0.1:$http_port"
https="https://127.0.0.1:$https_port"
c() { curl -sS -k --max-time 20 "$@"; }
expect_eq() { [ "$2" = "$3" ] || fail "smoke test: $1: expected $3, got $2"; }

# The OA hold runs in the background while the other checks go on.
c -o "$work/mp.json" -w '%{http_code}' -X POST --data-binary '<xml/>' "$https/wechat/mp/callback?signature=s&timestamp=1&nonce=n&openid=o" > "$work/mp.code" &
mp_pid=$!

expect_eq "HTTP redirect" "$(c -o /dev/null -w '%{http_code} %{redirect_url}' "$http/wecom/kf/callback?x=1")" "301 https://127.0.0.1/wecom/kf/callback?x=1"
echo token-content > "$work/acme/.well-known/acme-challenge/tok"
expect_eq "ACME http-01 on port 80" "$(c "$http/.well-known/acme-challenge/tok")" "token-content"
expect_eq "nginx health on port 80" "$(c "$http/nginx-health")" "ok"
ok "smoke: port 80 redirects to https, serves ACME http-01 and the health check"

expect_eq "HTTP/2 over TLS" "$(c -o /dev/null -w '%{http_version}' --http2 "$https/healthz")" "2"
expect_eq "TLS 1.2 accepted" "$(c -o /dev/null -w '%{http_code}' --tlsv1.2 --tls-max 1.2 "$https/healthz")" "200"
ok "smoke: TLS 1.2/1.3 with HTTP/2"

c -H 'X-Forwarded-For: 203.0.113.9' -o "$work/echo.json" "$https/wecom/kf/callback?msg_signature=a&timestamp=1&nonce=n&echostr=a+b%2Bc"
node - "$work/echo.json" <<'EOF' || fail "smoke test: proxied request"
const r = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const want = {
  url: '/wecom/kf/callback?msg_signature=a&timestamp=1&nonce=n&echostr=a+b%2Bc',
  'x-forwarded-for': '127.0.0.1', 'x-real-ip': '127.0.0.1', 'x-forwarded-proto': 'https',
};
const got = { url: r.url, 'x-forwarded-for': r.headers['x-forwarded-for'], 'x-real-ip': r.headers['x-real-ip'], 'x-forwarded-proto': r.headers['x-forwarded-proto'] };
for (const k of ['url', 'x-forwarded-for', 'x-real-ip', 'x-forwarded-proto']) {
  if (got[k] !== want[k]) { console.error(`  ${k}: expected ${want[k]}, got ${got[k]}`); process.exit(1); }
}
EOF
ok "smoke: query string passed byte for byte; X-Forwarded-For/X-Real-IP = the peer (a client's own dropped), X-Forwarded-Proto https"

max_body=$(sed -n 's/^MAX_BODY_BYTES=//p' "$work/nginx.env" | tr -d "'")
head -c "$max_body" /dev/zero > "$work/body-max"
head -c "$((max_body + 1))" /dev/zero > "$work/body-over"
head -c 1048576 /dev/zero > "$work/body-1m"
head -c 1048577 /dev/zero > "$work/body-1m-over"
expect_eq "callback body of MAX_BODY_BYTES" "$(c -o /dev/null -w '%{http_code}' --data-binary @"$work/body-max" "$https/wecom/kf/callback")" "200"
expect_eq "callback body over MAX_BODY_BYTES" "$(c -o /dev/null -w '%{http_code}' --data-binary @"$work/body-over" "$https/wecom/kf/callback")" "413"
expect_eq "bot callback body over MAX_BODY_BYTES" "$(c -o /dev/null -w '%{http_code}' --data-binary @"$work/body-over" "$https/wecom/bot/callback/aib_x")" "413"
expect_eq "/v1 body of 1 MiB" "$(c -o /dev/null -w '%{http_code}' --data-binary @"$work/body-1m" "$https/v1/chat/completions")" "200"
expect_eq "/v1 body over 1 MiB" "$(c -o /dev/null -w '%{http_code}' --data-binary @"$work/body-1m-over" "$https/v1/chat/completions")" "413"
ok "smoke: callback bodies limited to MAX_BODY_BYTES ($max_body), /v1 to 1 MiB"

expect_eq "/metrics from outside the allow-list" "$(c -o /dev/null -w '%{http_code}' "$https/metrics")" "403"
expect_eq "an unknown path" "$(c -o /dev/null -w '%{http_code}' "$https/etc/passwd")" "404"
for path in /console/ /admin/status /v1/models /readyz /wecom/bot/callback/aib_x; do
  expect_eq "$path reaches the bridge" "$(c "$https$path" | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).stub===true)}catch{console.log(false)}})')" "true"
done
ok "smoke: /metrics refused (403), unknown paths 404, console/admin/v1/readyz/bot callback proxied"

# SSE: the first event must arrive while the stub still holds the stream (proxy_buffering off is checked above).
first=$(curl -sS -k -N --max-time 1.5 "$https/admin/events" 2>/dev/null || true)
case "$first" in *"data: first"*) ;; *) fail "smoke test: /admin/events held back (got: ${first:-nothing} within 1.5 s)" ;; esac
ok "smoke: /admin/events streams (the first event arrives while the stream is open)"

wait "$mp_pid" || true
expect_eq "OA passive hold of 5.6 s" "$(cat "$work/mp.code")" "200"
ok "smoke: /wechat/mp/callback held 5.6 s and answered (no proxy timeout)"

kill "$nginx_pid"; wait "$nginx_pid" 2>/dev/null || true; nginx_pid=""
kill "$stub_pid"; wait "$stub_pid" 2>/dev/null || true; stub_pid=""

# --- Prometheus rules ---------------------------------------------------------------------------------------------
promtool check rules deploy/prometheus/alerts.yml > "$work/promtool.log" 2>&1 || { cat "$work/promtool.log" >&2; fail "promtool check rules"; }
ok "promtool check rules deploy/prometheus/alerts.yml ($(grep -o '[0-9]* rules found' "$work/promtool.log"))"
(cd deploy/prometheus && promtool test rules alerts.test.yml) > "$work/promtool-test.log" 2>&1 || { cat "$work/promtool-test.log" >&2; fail "promtool test rules"; }
ok "promtool test rules deploy/prometheus/alerts.test.yml"

# --- the dashboard: valid JSON whose queries parse as PromQL; dashboard and rules name real metrics ---------------
# Each panel query becomes a recording rule (Grafana's $__rate_interval and $instance filled in) for promtool.
node - deploy/grafana/wechat-ai-bridge.json "$work/dashboard-rules.json" <<'EOF' || fail "the dashboard is not valid JSON with queries"
const fs = require('fs');
const d = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const rules = [];
const walk = (panels) => {
  for (const p of panels || []) {
    walk(p.panels);
    for (const t of p.targets || []) {
      const expr = t.expr.replace(/\$__rate_interval/g, '5m').replace(/\$instance/g, '.*');
      rules.push({ record: `dashboard:panel_${p.id}:${t.refId}`, expr });
    }
  }
};
walk(d.panels);
if (rules.length < 20) { console.error(`  only ${rules.length} queries`); process.exit(1); }
fs.writeFileSync(process.argv[3], JSON.stringify({ groups: [{ name: 'dashboard', rules }] }));
EOF
promtool check rules "$work/dashboard-rules.json" > "$work/promtool-dashboard.log" 2>&1 || { cat "$work/promtool-dashboard.log" >&2; fail "dashboard queries are not valid PromQL"; }
ok "dashboard deploy/grafana/wechat-ai-bridge.json: $(grep -o '[0-9]* rules found' "$work/promtool-dashboard.log" | cut -d' ' -f1) queries parse as PromQL (promtool)"
npx vitest run test/deploy-observability.test.ts > "$work/vitest.log" 2>&1 || { cat "$work/vitest.log" >&2; fail "test/deploy-observability.test.ts"; }
ok "dashboard and alerts name only registered metrics; every alert has a runbook (test/deploy-observability.test.ts)"

echo "deploy checks passed"
