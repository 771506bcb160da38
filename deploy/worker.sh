#!/bin/sh
# The worker container's command: a bare `celery -A workers worker` (pool, concurrency and
# serializers come from celeryconfig.py), named worker@<container hostname> so the healthcheck
# can ping exactly this node, with task events on when TOKENRELAY_TASK_EVENTS is 1 (for Flower).
set -eu
case "${TOKENRELAY_TASK_EVENTS:-0}" in
    1 | true | yes | on) set -- --task-events "$@" ;;
esac
exec celery -A workers worker --hostname "worker@${HOSTNAME:-$(hostname)}" \
    --loglevel "${TOKENRELAY_LOG_LEVEL:-INFO}" "$@"
