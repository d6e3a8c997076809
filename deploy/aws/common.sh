# shellcheck shell=bash
# common.sh: shared by the deploy/aws scripts (sourced, not run).
#
# Every AWS call goes through aws_do (no output wanted) or aws_out (prints
# one value, captured by the caller). With --dry-run both print the exact
# command line on standard output, one per line, and call nothing; aws_out
# then returns the placeholder its caller gave, so later commands show
# where that value goes.

# Tag key marking everything one deployment created; teardown finds
# resources by it.
readonly TAG_KEY="exfilwatch:deployment"
readonly ROLE_KEY="exfilwatch:role"

DRY_RUN=0
REGION=""
NAME="exfilwatch"
# AWS CLI v2 pipes output through a pager unless told not to.
export AWS_PAGER=""

die() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
  exit 2
}

log() {
  printf '%s: %s\n' "${0##*/}" "$*" >&2
}

# Quote one word for a POSIX shell, only when it needs it.
shell_quote() {
  local word=$1
  if [[ $word =~ ^[A-Za-z0-9_./:=,@+%-]+$ ]]; then
    printf '%s' "$word"
  else
    printf "'%s'" "${word//\'/\'\\\'\'}"
  fi
}

print_command() {
  local first=1 word
  for word in aws "$@"; do
    if ((first)); then first=0; else printf ' '; fi
    shell_quote "$word"
  done
  printf '\n'
}

region_args=()
set_region() {
  REGION=$1
  region_args=()
  if [[ -n $REGION ]]; then region_args=(--region "$REGION"); fi
}

# aws_do ARGS...: run an AWS CLI command whose output is not needed.
aws_do() {
  if ((DRY_RUN)); then
    print_command "$@" "${region_args[@]}" >&3
    return 0
  fi
  log "aws $*"
  aws "$@" "${region_args[@]}" >/dev/null
}

# aws_out PLACEHOLDER ARGS...: run a command that prints one value
# (--query ... --output text); print that value.
aws_out() {
  local placeholder=$1
  shift
  if ((DRY_RUN)); then
    print_command "$@" "${region_args[@]}" >&3
    printf '%s\n' "$placeholder"
    return 0
  fi
  log "aws $*"
  local value
  value=$(aws "$@" "${region_args[@]}")
  if [[ -z $value || $value == None ]]; then
    die "no value from: aws $*"
  fi
  printf '%s\n' "$value"
}

# EC2 --tag-specifications for one resource type; optional role tag.
ec2_tags() {
  local type=$1 role=$2
  printf 'ResourceType=%s,Tags=[{Key=Name,Value=%s-%s},{Key=%s,Value=%s},{Key=%s,Value=%s}]' \
    "$type" "$NAME" "$role" "$TAG_KEY" "$NAME" "$ROLE_KEY" "$role"
}

# ELBv2 --tags words.
elb_tags() {
  local role=$1
  printf '%s\n' "Key=Name,Value=$NAME-$role" "Key=$TAG_KEY,Value=$NAME" "Key=$ROLE_KEY,Value=$role"
}

# JMESPath: the ids of the tagged resources of a describe-* listing.
tagged_query() {
  local list=$1 id=$2 role=${3:-}
  local cond="Key=='$TAG_KEY' && Value=='$NAME'"
  if [[ -n $role ]]; then
    printf "%s[?Tags[?%s] && Tags[?Key=='%s' && Value=='%s']].%s" "$list" "$cond" "$ROLE_KEY" "$role" "$id"
  else
    printf '%s[?Tags[?%s]].%s' "$list" "$cond" "$id"
  fi
}

# Comma-separated list -> array (global SPLIT).
split_list() {
  local IFS=,
  # shellcheck disable=SC2034  # SPLIT is read by the caller
  read -r -a SPLIT <<<"$1"
}

check_name() {
  # ELBv2 names: at most 32 characters, alphanumerics and hyphens; the
  # target group adds "-tg".
  [[ $NAME =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,27}[A-Za-z0-9])?$ ]] ||
    die "--name must be 1-29 letters, digits or hyphens (not at either end): $NAME"
}

start() {
  exec 3>&1
  if ((!DRY_RUN)) && ! command -v aws >/dev/null 2>&1; then
    die "the AWS CLI (aws) is not installed; try --dry-run"
  fi
}
