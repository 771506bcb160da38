"""Celery settings for the tokenrelay workers, every one derived from TOKENRELAY_* variables.

``celery -A workers worker`` reads this module through ``workers.app``; the defaults make a bare
worker do the right thing for I/O-bound delivery work (a threads pool, late acks, JSON only).
"""

from tokenrelay.config import Settings

_settings = Settings.from_env()

broker_url = _settings.broker_url
broker_connection_retry_on_startup = True
#: ETA (debounce) tasks are short; a lost worker's stream is resumed by the tick, not by this
broker_transport_options = {"visibility_timeout": 3600}

# JSON only: task arguments are stream ids, never credentials or message text.
task_serializer = "json"
accept_content = ["json"]
result_serializer = "json"
event_serializer = "json"
result_accept_content = ["json"]

#: results travel through the stream's own Redis keys, not a Celery result backend
task_ignore_result = True
task_default_queue = _settings.queue
task_acks_late = True
task_reject_on_worker_lost = True
task_track_started = False
#: task events cost worker CPU on every task, so they are off unless TOKENRELAY_TASK_EVENTS=1;
#: Flower (and `celery -A workers control enable_events`) switches them on while it watches.
#: Arguments are stream ids only either way.
worker_send_task_events = _settings.task_events
task_send_sent_event = _settings.task_events

#: delivery work waits on HTTP, so a thread pool beats processes
worker_pool = "threads"
worker_concurrency = _settings.worker_concurrency
worker_prefetch_multiplier = 4
timezone = "UTC"
enable_utc = True
