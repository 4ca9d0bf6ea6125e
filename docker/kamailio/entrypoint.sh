#!/bin/sh
# Fills tests/scaleout/kamailio.cfg and dispatcher.list, then runs Kamailio in the
# foreground (logging to stderr).
#   LISTEN   IP:PORT to listen on [this container's address:5060]
#   HOSTS    callmux SIP addresses, space-separated IP:PORT or NAME:PORT
#            [callmux-a:5060 callmux-b:5060]; names are resolved once, here
#   ALG      dispatcher algorithm: 4 round-robin [default], 0 hash over Call-ID
set -eu
LISTEN="${LISTEN:-$(hostname -i | awk '{print $1}'):5060}"
HOSTS="${HOSTS:-callmux-a:5060 callmux-b:5060}"
ALG="${ALG:-4}"
mkdir -p /run/callmux-lb
list=/run/callmux-lb/dispatcher.list
grep '^#' /etc/callmux-lb/dispatcher.list.in > "$list"
n=0
for h in $HOSTS; do
    n=$((n + 1))
    name="${h%:*}"
    port="${h##*:}"
    ip="$(getent hosts "$name" | awk '{print $1; exit}')"
    [ -n "$ip" ] || { echo "cannot resolve $name" >&2; exit 1; }
    echo "1 sip:$ip:$port;transport=udp 0 0 duid=host$n" >> "$list"
done
sed -e "s#{{LISTEN}}#$LISTEN#g" -e "s#{{DSLIST}}#$list#g" -e "s#{{ALG}}#$ALG#g" \
    /etc/callmux-lb/kamailio.cfg.in > /run/callmux-lb/kamailio.cfg
cat "$list"
exec kamailio -DD -E -f /run/callmux-lb/kamailio.cfg -P /run/callmux-lb/kamailio.pid \
    -m 64 -M 8
