#!/bin/sh
# Data in /var/lib/edgestock/{agent,hub} and edited configs in /etc/edgestock stay.
set -e
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
fi
exit 0
