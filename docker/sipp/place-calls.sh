#!/bin/sh
# Places SIPp calls that stream a tone, then exits with SIPp's status.
#   TARGET     host:port to send the INVITEs to (callmux, or Kamailio)   [callmux:5060]
#   SCENARIO   uac_tone.xml (direct) or uac_tone_rr.xml (through a record-routing proxy)
#   CALLS      number of calls [5]     RATE  calls per second [1]
#   SECONDS    length of each call [4] TONE_HZ  tone frequency [440]
set -eu
TARGET="${TARGET:-callmux:5060}"
SCENARIO="${SCENARIO:-uac_tone.xml}"
CALLS="${CALLS:-5}"
RATE="${RATE:-1}"
SECONDS_="${SECONDS:-4}"
TONE_HZ="${TONE_HZ:-440}"
IP="$(hostname -i | awk '{print $1}')"
work="$(mktemp -d)"
sox -n -r 8000 -c 1 -t ul "$work/tone.ul" synth "$SECONDS_" sine "$TONE_HZ" vol 0.5
sed -e "s#{{TONE}}#$work/tone.ul#" -e "s#{{PAUSE_MS}}#$((SECONDS_ * 1000))#" \
    "/scenarios/$SCENARIO" > "$work/scenario.xml"
echo "placing $CALLS call(s) to $TARGET from $IP ($SCENARIO, ${SECONDS_} s of $TONE_HZ Hz each)"
cd "$work"
exec sipp "$TARGET" -sf "$work/scenario.xml" -i "$IP" -mi "$IP" -mp 16000 \
    -m "$CALLS" -r "$RATE" -l "$CALLS" -s 100 -nostdin -timeout 120s -timeout_error \
    -trace_stat -trace_err
