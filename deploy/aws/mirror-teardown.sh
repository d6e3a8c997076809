#!/usr/bin/env bash
# mirror-teardown.sh: deletes everything mirror-setup.sh and
# mirror-sessions.sh created for a deployment, found by its tag
# (exfilwatch:deployment=NAME) and names: sessions first (a target or
# filter in use cannot be deleted), then the mirror target, the filters
# (their rules go with them), the load balancer (its listener goes with
# it) and, once the load balancer is gone, the target group.
set -euo pipefail
# shellcheck source=deploy/aws/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
usage: ${0##*/} [--name NAME] [--region REGION] [--dry-run]
USAGE
}

while (($#)); do
  case $1 in
    --name) NAME=${2:?}; shift 2 ;;
    --region) set_region "${2:?}"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
check_name
start

readonly DUMMY_ACCOUNT=111122223333
readonly DUMMY_REGION=${REGION:-us-east-1}

# In a real run a listing may be empty (already deleted): aws_list prints
# nothing then, instead of failing.
aws_list() {
  local placeholder=$1
  shift
  if ((DRY_RUN)); then
    aws_out "$placeholder" "$@"
    return 0
  fi
  local value
  value=$(aws "$@" "${region_args[@]}")
  [[ $value == None ]] || printf '%s\n' "$value"
}

sessions=$(aws_list "tms-0123456789abcdef0 tms-0123456789abcdef1" \
  ec2 describe-traffic-mirror-sessions \
  --query "$(tagged_query TrafficMirrorSessions TrafficMirrorSessionId)" --output text)
for id in $sessions; do
  aws_do ec2 delete-traffic-mirror-session --traffic-mirror-session-id "$id"
done

targets=$(aws_list "tmt-0123456789abcdef0" \
  ec2 describe-traffic-mirror-targets \
  --query "$(tagged_query TrafficMirrorTargets TrafficMirrorTargetId)" --output text)
for id in $targets; do
  aws_do ec2 delete-traffic-mirror-target --traffic-mirror-target-id "$id"
done

filters=$(aws_list "tmf-0123456789abcdef0 tmf-0fedcba9876543210" \
  ec2 describe-traffic-mirror-filters \
  --query "$(tagged_query TrafficMirrorFilters TrafficMirrorFilterId)" --output text)
for id in $filters; do
  aws_do ec2 delete-traffic-mirror-filter --traffic-mirror-filter-id "$id"
done

# ELBv2 names are unique per account and region; describe fails when the
# name does not exist, which is fine here.
nlb_arn=$(aws_list "arn:aws:elasticloadbalancing:$DUMMY_REGION:$DUMMY_ACCOUNT:loadbalancer/net/$NAME/0123456789abcdef" \
  elbv2 describe-load-balancers --names "$NAME" \
  --query 'LoadBalancers[0].LoadBalancerArn' --output text 2>/dev/null || true)
if [[ -n $nlb_arn ]]; then
  aws_do elbv2 delete-load-balancer --load-balancer-arn "$nlb_arn"
  aws_do elbv2 wait load-balancers-deleted --load-balancer-arns "$nlb_arn"
fi

tg_arn=$(aws_list "arn:aws:elasticloadbalancing:$DUMMY_REGION:$DUMMY_ACCOUNT:targetgroup/$NAME-tg/0123456789abcdef" \
  elbv2 describe-target-groups --names "$NAME-tg" \
  --query 'TargetGroups[0].TargetGroupArn' --output text 2>/dev/null || true)
if [[ -n $tg_arn ]]; then
  aws_do elbv2 delete-target-group --target-group-arn "$tg_arn"
fi
log "deployment $NAME removed"
