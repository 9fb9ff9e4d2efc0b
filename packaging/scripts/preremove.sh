#!/bin/sh
set -e
if [ -d /run/systemd/system ]; then
  systemctl stop edgestock-agent edgestock-hub 2>/dev/null || true
  systemctl disable edgestock-agent edgestock-hub 2>/dev/null || true
fi
exit 0
