# Shared by the bench scripts (sourced): free loopback ports and a 1-worker nginx backend.
# The caller defines `pids` (an array the cleanup trap kills).

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# nginx_backend DIR PORT [LOCATION...]: an nginx with one worker on 127.0.0.1:PORT, its files in
# DIR, serving /hello ("Hello, world\n") and each extra LOCATION line, e.g.
# 'location = /big.bin { root /tmp/x; }'. NGINX_CONNECTIONS sets worker_connections (4096) and
# raises the worker's descriptor limit to match. nginx hands DIR (its temp paths) to its worker
# user, so files under DIR are readable by the worker. Returns once /hello answers.
nginx_backend() {
  local dir=$1 port=$2
  shift 2
  local conns=${NGINX_CONNECTIONS:-4096}
  mkdir -p "$dir"
  {
    cat <<EOF
worker_processes 1;
worker_rlimit_nofile $((conns * 2 + 1024));
pid $dir/nginx.pid;
error_log $dir/error.log crit;
events { worker_connections $conns; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir; uwsgi_temp_path $dir;
  scgi_temp_path $dir;
  server {
    listen 127.0.0.1:$port;
    location = /hello { return 200 "Hello, world\n"; }
EOF
    local loc
    for loc in "$@"; do echo "    $loc"; done
    echo "  }"
    echo "}"
  } >"$dir/nginx.conf"
  nginx -c "$dir/nginx.conf" -g 'daemon off;' &
  pids+=($!)
  for _ in $(seq 100); do curl -fs -o /dev/null "http://127.0.0.1:$port/hello" && return 0; sleep 0.1; done
  echo "nginx did not start on port $port" >&2
  return 1
}

# proxer_proxy_toml FILE PORT BACKEND_PORT: a gateway config that is a plain reverse proxy, one
# [[routes]] entry for every path to a cluster with the one direct endpoint 127.0.0.1:BACKEND_PORT
# (max_idle 128), public listener 127.0.0.1:PORT, agent and admin listeners on free ports, no TCP
# tunnel ports, warn-level logs.
proxer_proxy_toml() {
  cat >"$1" <<EOF
listen = "127.0.0.1:$2"
agent_listen = "127.0.0.1:$(free_port)"
admin_listen = "127.0.0.1:$(free_port)"
[tcp]
port_range = ""
[[routes]]
path_prefix = "/"
cluster = "backend"
[clusters.backend]
endpoints = ["http://127.0.0.1:$3"]
max_idle = 128
[log]
level = "warn"
EOF
}
