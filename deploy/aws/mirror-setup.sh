#!/usr/bin/env bash
# mirror-setup.sh: builds the receiving side of exfilwatch's VPC Traffic
# Mirroring architecture with the AWS CLI:
#   - an internal Network Load Balancer, cross-zone load balancing on, with
#     a UDP 4789 (VXLAN) listener forwarding to a target group of sensors
#     whose health check is TCP 4789 (the sensor's health listener) and
#     source-IP stickiness (each mirrored ENI to one sensor);
#   - a traffic-mirror target for that NLB;
#   - the "dns" filter: DNS (UDP and TCP 53) and TLS on TCP 8443 leaving the
#     source, their replies, and the amazon-dns network service (without it
#     queries to the VPC resolver, 169.254.169.253 / VPC+2, are not
#     mirrored);
#   - the "incident" filter: everything, both directions, amazon-dns too.
# The sensors' security group is left to you; it must match the sensor's
# listen.sources (docs/configuration.md), because anyone who reaches UDP 4789
# can forge VXLAN. The NLB preserves client addresses, so mirrored traffic
# arrives from the mirror sources themselves:
#   inbound UDP 4789 from the mirror sources' subnets only (the same CIDRs
#     as listen.sources);
#   inbound TCP 4789 (the health check) from the NLB's subnets only;
#   nothing else on 4789.
# The script prints these rules, as aws commands, at the end.
# Sessions are created by mirror-sessions.sh, everything is removed by
# mirror-teardown.sh. Every resource is tagged exfilwatch:deployment=NAME.
set -euo pipefail
# shellcheck source=deploy/aws/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

usage() {
  cat <<USAGE
usage: ${0##*/} --vpc-id VPC --subnets SUBNET,SUBNET... [--sensors INSTANCE,...]
                [--name NAME] [--region REGION] [--ipv6] [--dry-run]

  --name NAME      deployment name, prefix of every resource (default exfilwatch)
  --vpc-id VPC     VPC of the sensors and the NLB
  --subnets LIST   subnets of the internal NLB, one per availability zone
  --sensors LIST   sensor instance ids to register in the target group
  --ipv6           also mirror IPv6 DNS/TLS (::/0 rules)
  --region REGION  passed to every aws command
  --dry-run        print the aws commands, call nothing
USAGE
}

VPC_ID="" SUBNETS="" SENSORS="" IPV6=0
while (($#)); do
  case $1 in
    --name) NAME=${2:?}; shift 2 ;;
    --vpc-id) VPC_ID=${2:?}; shift 2 ;;
    --subnets) SUBNETS=${2:?}; shift 2 ;;
    --sensors) SENSORS=${2:?}; shift 2 ;;
    --region) set_region "${2:?}"; shift 2 ;;
    --ipv6) IPV6=1; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ -n $VPC_ID ]] || die "--vpc-id is required"
[[ -n $SUBNETS ]] || die "--subnets is required"
check_name
start

readonly DUMMY_ACCOUNT=111122223333
readonly DUMMY_REGION=${REGION:-us-east-1}

# --- Network Load Balancer --------------------------------------------------
split_list "$SUBNETS"
subnets=("${SPLIT[@]}")
mapfile -t lb_tags < <(elb_tags nlb)
nlb_arn=$(aws_out "arn:aws:elasticloadbalancing:$DUMMY_REGION:$DUMMY_ACCOUNT:loadbalancer/net/$NAME/0123456789abcdef" \
  elbv2 create-load-balancer --name "$NAME" --type network --scheme internal \
  --subnets "${subnets[@]}" --tags "${lb_tags[@]}" \
  --query 'LoadBalancers[0].LoadBalancerArn' --output text)

# Cross-zone keeps a zone with few sensors from being overloaded; with
# source-IP stickiness (below) each mirrored ENI still goes to one sensor.
aws_do elbv2 modify-load-balancer-attributes --load-balancer-arn "$nlb_arn" \
  --attributes Key=load_balancing.cross_zone.enabled,Value=true

mapfile -t tg_tags < <(elb_tags target-group)
tg_arn=$(aws_out "arn:aws:elasticloadbalancing:$DUMMY_REGION:$DUMMY_ACCOUNT:targetgroup/$NAME-tg/0123456789abcdef" \
  elbv2 create-target-group --name "$NAME-tg" --protocol UDP --port 4789 \
  --vpc-id "$VPC_ID" --target-type instance \
  --health-check-protocol TCP --health-check-port 4789 \
  --health-check-interval-seconds 10 --healthy-threshold-count 3 --unhealthy-threshold-count 3 \
  --tags "${tg_tags[@]}" \
  --query 'TargetGroups[0].TargetGroupArn' --output text)

# Rolling upgrades: a deregistered sensor gets no new flows and, after 30 s,
# none of its old ones either (UDP flows would otherwise stick to it).
# Source-IP stickiness: the outer source is the mirrored ENI, so each mirror
# source lands on one sensor and its per-client state stays whole (what it
# does not cover: docs/operations.md section 5).
aws_do elbv2 modify-target-group-attributes --target-group-arn "$tg_arn" \
  --attributes Key=deregistration_delay.timeout_seconds,Value=30 \
  Key=deregistration_delay.connection_termination.enabled,Value=true \
  Key=stickiness.enabled,Value=true Key=stickiness.type,Value=source_ip

mapfile -t listener_tags < <(elb_tags listener)
aws_do elbv2 create-listener --load-balancer-arn "$nlb_arn" --protocol UDP --port 4789 \
  --default-actions "Type=forward,TargetGroupArn=$tg_arn" --tags "${listener_tags[@]}"

if [[ -n $SENSORS ]]; then
  split_list "$SENSORS"
  targets=()
  for id in "${SPLIT[@]}"; do targets+=("Id=$id"); done
  aws_do elbv2 register-targets --target-group-arn "$tg_arn" --targets "${targets[@]}"
fi

# --- Mirror target ------------------------------------------------------------
target_id=$(aws_out "tmt-0123456789abcdef0" \
  ec2 create-traffic-mirror-target --network-load-balancer-arn "$nlb_arn" \
  --description "$NAME: exfilwatch sensors behind NLB $NAME" \
  --tag-specifications "$(ec2_tags traffic-mirror-target target)" \
  --query 'TrafficMirrorTarget.TrafficMirrorTargetId' --output text)

# --- Filters ------------------------------------------------------------------
cidrs=(0.0.0.0/0)
if ((IPV6)); then cidrs+=(::/0); fi

# add_rule FILTER DIRECTION NUMBER CIDR [--protocol N --*-port-range ...]
add_rule() {
  local filter=$1 direction=$2 number=$3 cidr=$4
  shift 4
  aws_do ec2 create-traffic-mirror-filter-rule --traffic-mirror-filter-id "$filter" \
    --traffic-direction "$direction" --rule-number "$number" --rule-action accept \
    --source-cidr-block "$cidr" --destination-cidr-block "$cidr" "$@" \
    --description "$NAME: exfilwatch"
}

dns_filter=$(aws_out "tmf-0123456789abcdef0" \
  ec2 create-traffic-mirror-filter \
  --description "$NAME: egress DNS (53) and TLS (8443) for exfilwatch" \
  --tag-specifications "$(ec2_tags traffic-mirror-filter dns-filter)" \
  --query 'TrafficMirrorFilter.TrafficMirrorFilterId' --output text)
aws_do ec2 modify-traffic-mirror-filter-network-services \
  --traffic-mirror-filter-id "$dns_filter" --add-network-services amazon-dns

# Rule numbers: 100 + 100 x address family + 10 x service. Egress rules
# match the client's requests (destination port), ingress rules the
# replies (source port): the scorer reads answer sizes, NXDOMAIN and TLS
# bytes down, and TCP DNS needs both directions to reassemble.
family=0
for cidr in "${cidrs[@]}"; do
  base=$((100 + 100 * family))
  for service in "17 53 0" "6 53 1" "6 8443 2"; do
    read -r proto port index <<<"$service"
    number=$((base + 10 * index))
    add_rule "$dns_filter" egress "$number" "$cidr" --protocol "$proto" \
      --destination-port-range "FromPort=$port,ToPort=$port"
    add_rule "$dns_filter" ingress "$number" "$cidr" --protocol "$proto" \
      --source-port-range "FromPort=$port,ToPort=$port"
  done
  family=$((family + 1))
done

incident_filter=$(aws_out "tmf-0fedcba9876543210" \
  ec2 create-traffic-mirror-filter \
  --description "$NAME: incident, all traffic" \
  --tag-specifications "$(ec2_tags traffic-mirror-filter incident-filter)" \
  --query 'TrafficMirrorFilter.TrafficMirrorFilterId' --output text)
aws_do ec2 modify-traffic-mirror-filter-network-services \
  --traffic-mirror-filter-id "$incident_filter" --add-network-services amazon-dns
number=100
for cidr in 0.0.0.0/0 ::/0; do
  add_rule "$incident_filter" egress "$number" "$cidr"
  add_rule "$incident_filter" ingress "$number" "$cidr"
  number=$((number + 100))
done

cat >&2 <<DONE
${0##*/}: deployment $NAME
  load balancer    $nlb_arn
  target group     $tg_arn
  mirror target    $target_id
  dns filter       $dns_filter
  incident filter  $incident_filter
next: mirror-sessions.sh --name $NAME --enis ENI,ENI...
sensor security group (SG_ID: the sensors'; SOURCES: the mirror sources'
subnets, also listen.sources; NLB_SUBNETS: the CIDRs of $SUBNETS):
  aws ec2 authorize-security-group-ingress --group-id SG_ID \\
    --ip-permissions 'IpProtocol=udp,FromPort=4789,ToPort=4789,IpRanges=[{CidrIp=SOURCE}]'
    (one per source CIDR)
  aws ec2 authorize-security-group-ingress --group-id SG_ID \\
    --ip-permissions 'IpProtocol=tcp,FromPort=4789,ToPort=4789,IpRanges=[{CidrIp=NLB_SUBNET}]'
    (one per NLB subnet CIDR; the health check)
DONE
