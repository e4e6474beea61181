#!/bin/sh
# Two MPI "hosts" on one machine: network namespaces joined by a veth pair (recipe:
# docs/architecture.md, "Two hosts"). Needs root and `ip netns`. Traffic stays inside the two
# namespaces (addresses 10.77.0.1 and 10.77.0.2 exist only there).
#
#   scripts/netns-hosts.sh create ID DIR   creates namespaces alspec-h1-ID / alspec-h2-ID and writes
#                                          DIR/agent.sh, the mpirun rsh agent (`--mca plm_rsh_agent`)
#                                          that runs a command "on" 10.77.0.1 / 10.77.0.2
#   scripts/netns-hosts.sh destroy ID      removes both namespaces (the veth pair goes with them)
#
# ID keeps concurrent runs apart (use the caller's PID). Then, e.g.:
#   ip netns exec alspec-h1-ID mpirun --mca plm_rsh_agent DIR/agent.sh --mca btl tcp,self \
#     --mca btl_tcp_if_include 10.77.0.0/24 --mca oob_tcp_if_include 10.77.0.0/24 \
#     --host 10.77.0.1,10.77.0.2 -np 2 PROGRAM
set -eu
cmd=${1:-}
id=${2:-}
case "$id" in
  ''|*[!0-9A-Za-z]*) echo "usage: $0 create ID DIR | destroy ID  (ID: letters and digits)" >&2; exit 2;;
esac
ns1=alspec-h1-$id
ns2=alspec-h2-$id
# Interface names are limited to 15 characters.
va=va$(printf '%s' "$id" | tail -c 12)
vb=vb$(printf '%s' "$id" | tail -c 12)
case "$cmd" in
  create)
    dir=${3:?usage: $0 create ID DIR}
    ip netns add "$ns1"
    ip netns add "$ns2" || { ip netns del "$ns1"; exit 1; }
    {
      ip link add "$va" type veth peer name "$vb" &&
      ip link set "$va" netns "$ns1" && ip link set "$vb" netns "$ns2" &&
      ip -n "$ns1" addr add 10.77.0.1/24 dev "$va" && ip -n "$ns2" addr add 10.77.0.2/24 dev "$vb" &&
      ip -n "$ns1" link set "$va" up && ip -n "$ns2" link set "$vb" up &&
      ip -n "$ns1" link set lo up && ip -n "$ns2" link set lo up
    } || { ip netns del "$ns1"; ip netns del "$ns2"; exit 1; }
    mkdir -p "$dir"
    cat > "$dir/agent.sh" <<AGENT
#!/bin/sh
# mpirun rsh agent: AGENT HOST COMMAND... runs COMMAND inside the namespace of HOST.
host=\$1; shift
case \$host in 10.77.0.1) ns=$ns1;; 10.77.0.2) ns=$ns2;; *) echo "agent: unknown host \$host" >&2; exit 1;; esac
exec ip netns exec \$ns sh -c "\$*"
AGENT
    chmod +x "$dir/agent.sh"
    echo "$ns1 $ns2 10.77.0.1 10.77.0.2"
    ;;
  destroy)
    rc=0
    ip netns del "$ns1" 2>/dev/null || rc=1
    ip netns del "$ns2" 2>/dev/null || rc=1
    exit $rc
    ;;
  *)
    echo "usage: $0 create ID DIR | destroy ID" >&2
    exit 2
    ;;
esac
