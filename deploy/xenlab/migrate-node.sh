#!/bin/bash
# SHARE/test.sh of the two-host lab (deploy/xenlab-migrate.sh): dom0's init
# runs it once its own guest answers. It serves the orchestrator (on the
# host, deploy/xenlab/migrate-lab.py) through deploy/xenlab/node-agent.py
# until told to stop; the checks are the orchestrator's.
export PATH=$PATH:/usr/sbin:/sbin:/usr/lib/xen-4.17/bin
ts "XSR-MIG node $(cat /mnt/host/role) at $(cat /mnt/host/ip), own guest domid ${DOMID:-none}"
mkdir -p /mnt/host/results
# dom0 processes of this lab die of corrupted memory now and then (README,
# "Xen lab"; Python's start-up was seen to die of it here with a segfault
# or a "Fatal Python error"): the agent ends with 0 only when told to, so
# any other end starts it again (bounded)
for try in 1 2 3 4 5 6 7 8; do
  python3 /mnt/host/node-agent.py serve "$(cat /mnt/host/ip)"
  rc=$?
  [ $rc != 0 ] || break
  ts "XSR-MIG agent ended with status $rc: starting it again ($try)"
  sleep 1
done
cp /var/log/xen/xenstored-xsr.log /var/log/xen/xsr-wrapper.log /mnt/host/results/ 2>/dev/null
cp /var/log/xen/xl-*.log /mnt/host/results/ 2>/dev/null
sync
exit $rc
