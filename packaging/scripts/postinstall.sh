#!/bin/sh
# Works with and without a running systemd (containers, chroots, CI).
set -e
if ! getent passwd edgestock >/dev/null 2>&1; then
  useradd --system --home-dir /var/lib/edgestock --no-create-home --shell /usr/sbin/nologin edgestock 2>/dev/null ||
    adduser --system --home /var/lib/edgestock --no-create-home --group edgestock
fi
# The units' data dirs, one per role (systemd's StateDirectory would create
# them at the first start): /var/lib/edgestock/agent, /var/lib/edgestock/hub.
# Created here so the first token can be issued before the first start:
#   sudo -u edgestock edgestock token issue --name ops --scope admin --data-dir /var/lib/edgestock/agent
for d in /var/lib/edgestock /var/lib/edgestock/agent /var/lib/edgestock/hub; do
  mkdir -p "$d"
  chown edgestock:edgestock "$d"
  chmod 0750 "$d"
done
chgrp edgestock /etc/edgestock/agent.yaml /etc/edgestock/hub.yaml 2>/dev/null || true
if [ -d /run/systemd/system ]; then
  systemctl daemon-reload || true
  echo "edgestock: the agent's warehouse ID defaults to the host name (set warehouse: in /etc/edgestock/agent.yaml first to choose another);"
  echo "edgestock: enable with: systemctl enable --now edgestock-agent"
fi
exit 0
