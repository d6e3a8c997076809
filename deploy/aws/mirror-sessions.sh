#!/usr/bin/env bash
# mirror-sessions.sh: creates (or deletes) traffic-mirror sessions from a
# list of source ENIs to the mirror target of a deployment made by
# mirror-setup.sh. Target and filter are found by their tags.
#
# Session numbers order the sessions of one ENI: a packet goes to the
# lowest-numbered session whose filter accepts it. The DNS sessions use 10
# by default, so an incident session (--filter incident --session-number 1)
# on the same ENI takes precedence while it exists, and deleting it brings
# the DNS session back into force.
set -euo pipefail
# shellcheck source=deploy/aws/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
usage: ${0##*/} --enis ENI,ENI... [--name NAME] [--filter dns|incident]
                [--session-number N] [--vni-base N] [--packet-length N]
                [--delete] [--region REGION] [--dry-run]

  --enis LIST          source network interfaces (eni-...)
  --filter F           dns (default): DNS and TLS 8443; incident: everything
  --session-number N   1-32766, lower wins on an ENI (default 10)
  --vni-base N         VNI of the i-th ENI is N+i (default: AWS picks one);
                       the sensor reports it as tunnel.vni in every record
  --packet-length N    bytes of each packet to mirror (default: whole packet);
                       the sensor counts what a cut removes
  --delete             delete this deployment's sessions with that filter on
                       those ENIs instead
USAGE
}

ENIS="" FILTER=dns SESSION_NUMBER=10 VNI_BASE="" PACKET_LENGTH="" DELETE=0
while (($#)); do
  case $1 in
    --name) NAME=${2:?}; shift 2 ;;
    --enis) ENIS=${2:?}; shift 2 ;;
    --filter) FILTER=${2:?}; shift 2 ;;
    --session-number) SESSION_NUMBER=${2:?}; shift 2 ;;
    --vni-base) VNI_BASE=${2:?}; shift 2 ;;
    --packet-length) PACKET_LENGTH=${2:?}; shift 2 ;;
    --delete) DELETE=1; shift ;;
    --region) set_region "${2:?}"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ -n $ENIS ]] || die "--enis is required"
[[ $FILTER == dns || $FILTER == incident ]] || die "--filter must be dns or incident"
if ! [[ $SESSION_NUMBER =~ ^[0-9]+$ ]] || ((SESSION_NUMBER < 1 || SESSION_NUMBER > 32766)); then
  die "--session-number must be 1-32766"
fi
[[ -z $VNI_BASE || $VNI_BASE =~ ^[0-9]+$ ]] || die "--vni-base must be a number"
[[ -z $PACKET_LENGTH || $PACKET_LENGTH =~ ^[0-9]+$ ]] || die "--packet-length must be a number"
check_name
start

split_list "$ENIS"
enis=("${SPLIT[@]}")

filter_id=$(aws_out "tmf-0123456789abcdef0" \
  ec2 describe-traffic-mirror-filters \
  --query "$(tagged_query TrafficMirrorFilters TrafficMirrorFilterId "$FILTER-filter") | [0]" --output text)

if ((DELETE)); then
  for eni in "${enis[@]}"; do
    sessions=$(aws_out "tms-0123456789abcdef0" \
      ec2 describe-traffic-mirror-sessions \
      --filters "Name=network-interface-id,Values=$eni" "Name=traffic-mirror-filter-id,Values=$filter_id" \
      --query "$(tagged_query TrafficMirrorSessions TrafficMirrorSessionId)" --output text)
    for session in $sessions; do
      aws_do ec2 delete-traffic-mirror-session --traffic-mirror-session-id "$session"
    done
  done
  exit 0
fi

target_id=$(aws_out "tmt-0123456789abcdef0" \
  ec2 describe-traffic-mirror-targets \
  --query "$(tagged_query TrafficMirrorTargets TrafficMirrorTargetId) | [0]" --output text)

i=0
for eni in "${enis[@]}"; do
  extra=()
  if [[ -n $VNI_BASE ]]; then extra+=(--virtual-network-id "$((VNI_BASE + i))"); fi
  if [[ -n $PACKET_LENGTH ]]; then extra+=(--packet-length "$PACKET_LENGTH"); fi
  aws_do ec2 create-traffic-mirror-session --network-interface-id "$eni" \
    --traffic-mirror-target-id "$target_id" --traffic-mirror-filter-id "$filter_id" \
    --session-number "$SESSION_NUMBER" "${extra[@]}" \
    --description "$NAME: $FILTER mirror of $eni" \
    --tag-specifications "$(ec2_tags traffic-mirror-session "$FILTER-session")"
  i=$((i + 1))
done
