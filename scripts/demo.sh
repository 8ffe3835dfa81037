#!/usr/bin/env bash
# demo.sh — peergate's main job: the Kube-OVN VPC peering of
# ../shared/seed-kube-ovn-vpc-peering.md with real Linux hosts.
#
# Topology (all names carry this run's id; everything is removed on exit):
#
#   ns h1 (vpc-1 host)                  ns gw (gateway)                 ns h2 (vpc-2 host)
#   vx100 10.0.0.2/16 (VXLAN VNI 100)   dataplane (DPDK net_af_packet)  e0 172.31.0.2/16
#   u0 192.0.2.10/24  ── veth ──  gw0 (port "fabric", VTEP 192.0.2.1)
#                                       gw1 (port "vpc2", untagged) ── veth ── e0
#
# The seed document's manifests are applied unedited, plus the peergate file
# beside them that says how each VPC reaches the gateway. Then both hosts ping
# each other as the document does (ttl=62: two VPC routers), and the gateway's
# counters are printed. Second act: the Peering document's static NAT (use
# case 1, testdata/manifests/peering-api-1-static-nat/, unedited): the same
# hosts renumbered, a TCP connection from vpc2's 10.2.1.1 to vpc1's exposed
# 192.168.1.2:443 (nc, netcat-openbsd), seen from both ends.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${PEERGATE_BIN:-$ROOT/bin}

if [ "$(id -u)" -ne 0 ]; then
  echo "demo: needs root (network namespaces, DPDK)" >&2
  exit 1
fi

id=$$
NS_GW=pg-gw-$id NS_H1=pg-h1-$id NS_H2=pg-h2-$id
# The gateway ports are gw0 and gw1 inside the gateway namespace, the names
# the attachment files of testdata/manifests/ give, so they apply unedited.
G1=gw0 G2=gw1
WORK=$(mktemp -d /tmp/peergate-demo.XXXXXX)
SOCK=$WORK/controlplane.sock
PIDS=()

cleanup() {
  set +e
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
  for ns in "$NS_H1" "$NS_H2" "$NS_GW"; do ip netns del "$ns" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "topology: namespaces $NS_H1 $NS_H2 $NS_GW"
for ns in "$NS_GW" "$NS_H1" "$NS_H2"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
ip link add "$G1" netns "$NS_GW" type veth peer name u0 netns "$NS_H1"
ip link add "$G2" netns "$NS_GW" type veth peer name e0 netns "$NS_H2"
for l in "$G1" "$G2"; do
  ip -n "$NS_GW" link set "$l" up
  ip netns exec "$NS_GW" ethtool -K "$l" tso off gso off gro off tx off rx off >/dev/null 2>&1 || true
done
# vpc-1 host: a VXLAN tunnel (VNI 100) to the gateway's VTEP.
ip -n "$NS_H1" addr add 192.0.2.10/24 dev u0
ip -n "$NS_H1" link set u0 up
ip -n "$NS_H1" link add vx100 type vxlan id 100 local 192.0.2.10 remote 192.0.2.1 dstport 4789 dev u0
ip -n "$NS_H1" link set vx100 mtu 1450 up
ip -n "$NS_H1" addr add 10.0.0.2/16 dev vx100
ip -n "$NS_H1" route add default via 10.0.0.1
# vpc-2 host: untagged on the gateway's second port.
ip -n "$NS_H2" addr add 172.31.0.2/16 dev e0
ip -n "$NS_H2" link set e0 up
ip -n "$NS_H2" route add default via 172.31.0.1
for pair in "$NS_H1 u0" "$NS_H1 vx100" "$NS_H2 e0"; do
  set -- $pair
  ip netns exec "$1" ethtool -K "$2" tso off gso off tx off >/dev/null 2>&1 || true
done

step "controlplane and dataplane"
"$BIN/controlplane" --listen "unix://$SOCK" --state-dir "$WORK/state" >"$WORK/controlplane.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 50); do [ -S "$SOCK" ] && break; sleep 0.1; done
ip netns exec "$NS_GW" "$BIN/dataplane" run --controlplane "unix://$SOCK" \
  --eal "--no-huge -m 512 --no-pci --no-shconf --file-prefix=pgdemo$id" >"$WORK/dataplane.log" 2>&1 &
PIDS+=($!)

step "gwctl apply: the seed document's manifests, unedited, plus the attachments"
GWCTL=("$BIN/gwctl" --server "unix://$SOCK")
"${GWCTL[@]}" apply -f testdata/manifests/kube-ovn-vpc-peering/
"${GWCTL[@]}" get routes vpc-1

# wait_sync waits until every dataplane runs the controlplane's generation.
wait_sync() {
  for _ in $(seq 100); do
    "${GWCTL[@]}" get status 2>/dev/null | grep -q 'in sync' && return 0
    sleep 0.1
  done
  echo "demo: the dataplane did not take the last generation:" >&2
  "${GWCTL[@]}" get status >&2 || true
  return 1
}
wait_sync

status=0
step "vpc-1-pod -> vpc-2-pod"
ip netns exec "$NS_H1" ping -c 3 -i 0.2 172.31.0.2 || status=1
step "vpc-2-pod -> vpc-1-pod"
ip netns exec "$NS_H2" ping -c 3 -i 0.2 10.0.0.2 || status=1

step "gateway counters"
sleep 1.2 # one stats interval
"${GWCTL[@]}" stats

# ---- the Peering API's first use case: static (stateless) NAT ------------
# The same hosts change subnets: the vpc1 host is 10.1.1.2 (exposed to vpc2
# as 192.168.1.2), the vpc2 host is 10.2.1.1. vpc1 accepts TCP to port 443
# only, vpc2 TCP from port 443 only.
step "Peering API, static NAT: replace the Kube-OVN objects (the Gateway stays)"
"${GWCTL[@]}" delete -f testdata/manifests/kube-ovn-vpc-peering/kube-ovn-vpc-peering-2-vpc-peerings.yaml \
  -f testdata/manifests/kube-ovn-vpc-peering/kube-ovn-vpc-peering-1-vpcs-and-subnets.yaml \
  -f testdata/manifests/kube-ovn-vpc-peering/kube-ovn-vpc-peering-3-pods.yaml
"${GWCTL[@]}" delete VPC vpc-1 vpc-2
"${GWCTL[@]}" apply -f testdata/manifests/peering-api-1-static-nat/
"${GWCTL[@]}" get routes vpc2
ip -n "$NS_H1" addr flush dev vx100
ip -n "$NS_H1" addr add 10.1.1.2/24 dev vx100
ip -n "$NS_H1" route add default via 10.1.1.1
ip -n "$NS_H2" addr flush dev e0
ip -n "$NS_H2" addr add 10.2.1.1/24 dev e0
ip -n "$NS_H2" route add default via 10.2.1.254
wait_sync

step "vpc2 host 10.2.1.1 -> vpc1's exposed 192.168.1.2:443"
# nc (netcat-openbsd) listens in the vpc1 host and echoes what it gets back.
ip netns exec "$NS_H1" nc -l -k -n 10.1.1.2 443 >"$WORK/received" &
PIDS+=($!)
sleep 0.3
exec 3> >(ip netns exec "$NS_H2" nc -N -n -w 3 192.168.1.2 443)
echo "hello from vpc2 through the gateway" >&3
sleep 0.5
echo "vpc2 host's view (client):"
ip netns exec "$NS_H2" ss -tn state established '( dport = :443 )' | sed 's/^/  /'
echo "vpc1 host's view (server):"
ip netns exec "$NS_H1" ss -tn state established '( sport = :443 )' | sed 's/^/  /'
exec 3>&-
sleep 0.3
echo "vpc1 host received: $(cat "$WORK/received")"
grep -q "hello from vpc2" "$WORK/received" || status=1
step "vpc2 -> 192.168.1.2:80 is not allowed by vpc1's ingress (dropped)"
if ip netns exec "$NS_H2" nc -n -z -w 1 192.168.1.2 80; then
  echo "  port 80 answered: the filter did not apply" >&2
  status=1
else
  echo "  no answer on port 80: filtered"
fi

step "gateway counters"
sleep 1.2
"${GWCTL[@]}" stats
if [ $status -ne 0 ]; then
  echo "demo: a check failed; logs:" >&2
  tail -n 30 "$WORK/controlplane.log" "$WORK/dataplane.log" >&2
fi
exit $status
