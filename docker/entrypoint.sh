#!/bin/sh
# callmux container entrypoint: runs `callmux "$@"`. For `serve`, CALLMUX_MEDIA_IP (the
# address callmux puts in SDP answers, so peers know where to send RTP) defaults to the
# container's own address; set it to the host's reachable address when RTP comes from
# outside Docker through published ports.
set -eu
if [ "${1:-}" = "serve" ] && [ -z "${CALLMUX_MEDIA_IP:-}" ]; then
    CALLMUX_MEDIA_IP="$(hostname -i | awk '{print $1}')"
    export CALLMUX_MEDIA_IP
fi
exec callmux "$@"
