#!/bin/sh
# Works with and without a running systemd (containers, chroots, CI).
set -e
if ! getent passwd edgestock >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/edgestock --no-create-home --shell /usr/sbin/nologin edgestock 2>/dev/null ||
    adduser --system --home /var/lib/edgestock --no-create-home --group edgestock
fi
mkdir -p /var/lib/edgestock
chown edgestock:edgestock /var/lib/edgestock
chmod 0750 /var/lib/edgestock
chgrp edgestock /etc/edgestock/agent.yaml /etc/edgestock/hub.yaml 2>/dev/null || true
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  echo "edgestock: enable with: systemctl enable --now edgestock-agent"
fi
exit 0
