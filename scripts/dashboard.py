#!/usr/bin/env python3
"""Writes monitoring/grafana-dashboard.json, Cutover's Grafana dashboard.

The JSON is what Grafana imports; this script is where it is edited, so that panels stay
consistent (one datasource variable, the same service/environment filters everywhere).
tests/tests/monitoring.rs checks every metric the dashboard queries against what the worker
and `cutover serve` export. Run: python3 scripts/dashboard.py
"""
import json
import pathlib

SEL = 'service=~"$service",environment=~"$environment"'
panels = []
y = 0


def row(title):
    global y
    panels.append({"type": "row", "title": title, "collapsed": False,
                   "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "id": len(panels) + 1, "panels": []})
    y += 1


def panel(title, kind, targets, x, w=8, h=8, unit=None, description=""):
    p = {
        "id": len(panels) + 1,
        "type": kind,
        "title": title,
        "description": description,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": h, "w": w, "x": x, "y": y},
        "targets": [{"refId": chr(65 + i), "expr": e, "legendFormat": l,
                     "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                    for i, (e, l) in enumerate(targets)],
        "fieldConfig": {"defaults": {"unit": unit or "short"}, "overrides": []},
        "options": {},
    }
    panels.append(p)


def next_line(h=8):
    global y
    y += h


row("Rollouts")
panel("Rollouts started", "timeseries",
      [(f'sum by (service, environment) (increase(cutover_rollouts_started_total{{{SEL}}}[$__rate_interval]))', "{{service}}/{{environment}}")], 0)
panel("Rollouts finished, by outcome", "timeseries",
      [(f'sum by (outcome) (increase(cutover_rollouts_finished_total{{{SEL}}}[$__rate_interval]))', "{{outcome}}")], 8)
panel("Approvals waiting", "stat",
      [(f'sum(cutover_approvals_waiting{{{SEL}}})', "waiting"),
       (f'time() - min(cutover_approval_waiting_since_timestamp_seconds{{{SEL}}} > 0)', "oldest wait")], 16,
      description="Approval gates waiting for people, and how long the oldest has waited (seconds).")
next_line()
row("Steps")
panel("Step duration p50 / p95, by kind", "timeseries",
      [(f'histogram_quantile(0.5, sum by (kind, le) (rate(cutover_step_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))', "p50 {{kind}}"),
       (f'histogram_quantile(0.95, sum by (kind, le) (rate(cutover_step_duration_seconds_bucket{{{SEL}}}[$__rate_interval])))', "p95 {{kind}}")], 0, unit="s")
panel("Steps finished, by kind and outcome", "timeseries",
      [(f'sum by (kind, outcome) (increase(cutover_step_duration_seconds_count{{{SEL}}}[$__rate_interval]))', "{{kind}} {{outcome}}")], 8)
panel("Attempts and retries", "timeseries",
      [('sum by (retry, outcome) (increase(cutover_step_attempts_total{service=~"$service"}[$__rate_interval]))', "retry={{retry}} {{outcome}}")], 16)
next_line()
panel("Analysis verdicts", "timeseries",
      [(f'sum by (verdict) (increase(cutover_analysis_verdicts_total{{{SEL}}}[$__rate_interval]))', "{{verdict}}")], 0)
panel("Steps past their timeout", "stat",
      [(f'count((cutover_step_deadline_timestamp_seconds{{{SEL}}} > 0) < time()) or vector(0)', "stuck")], 8,
      description="Step attempts running beyond their timeout (alert CutoverStepStuck).")
panel("Lock wait p95", "timeseries",
      [('histogram_quantile(0.95, sum by (kind, le) (rate(cutover_lock_wait_seconds_bucket[$__rate_interval])))', "{{kind}}")], 16, unit="s")
next_line()
row("DR drills")
panel("RTO against objective", "timeseries",
      [(f'cutover_drill_rto_seconds{{{SEL}}}', "RTO {{drill}}"),
       (f'cutover_drill_rto_objective_seconds{{{SEL}}}', "objective {{drill}}")], 0, unit="s")
panel("RPO (writes lost) against objective", "timeseries",
      [(f'cutover_drill_rpo_markers{{{SEL}}}', "RPO {{drill}}"),
       (f'cutover_drill_rpo_objective_markers{{{SEL}}}', "objective {{drill}}")], 8)
panel("Last drill", "stat",
      [(f'min by (drill) (cutover_drill_objectives_met{{{SEL}}})', "{{drill}} met"),
       (f'time() - max by (drill) (cutover_drill_last_finished_timestamp_seconds{{{SEL}}})', "{{drill}} age")], 16,
      description="1 when the last drill met both objectives; seconds since it ended.")
next_line()
panel("Drills, by outcome", "timeseries",
      [(f'sum by (outcome) (increase(cutover_drills_finished_total{{{SEL}}}[$__rate_interval]))', "{{outcome}}")], 0, w=24, h=6)
next_line(6)
row("Webhooks (cutover serve)")
panel("Deliveries, by provider and outcome", "timeseries",
      [('sum by (provider, outcome) (rate(cutover_webhook_deliveries_total[$__rate_interval]))', "{{provider}} {{outcome}}")], 0, w=12, unit="reqps")
panel("Answer time p50 / p99", "timeseries",
      [('histogram_quantile(0.5, sum by (le) (rate(cutover_webhook_request_duration_seconds_bucket[$__rate_interval])))', "p50"),
       ('histogram_quantile(0.99, sum by (le) (rate(cutover_webhook_request_duration_seconds_bucket[$__rate_interval])))', "p99")], 12, w=12, unit="s")
next_line()
row("Workers")
panel("Workers up", "stat", [('sum(up{job="cutover-worker"})', "up")], 0)
panel("Task slots available", "timeseries",
      [('sum by (instance, worker_type) (temporal_worker_task_slots_available)', "{{instance}} {{worker_type}}")], 8)
panel("Workflow task schedule-to-start p95", "timeseries",
      [('histogram_quantile(0.95, sum by (le) (rate(temporal_workflow_task_schedule_to_start_latency_seconds_bucket[$__rate_interval])))', "p95")], 16, unit="s",
      description="How long workflow tasks wait for a worker: rising means too few workers.")
next_line()
panel("Activity failures", "timeseries",
      [('sum by (activity_type) (rate(temporal_activity_execution_failed_total[$__rate_interval]))', "{{activity_type}}")], 0)
panel("Ledger write p99", "timeseries",
      [('histogram_quantile(0.99, sum by (record, le) (rate(cutover_ledger_write_seconds_bucket[$__rate_interval])))', "{{record}}")], 8, unit="s")
panel("Sticky cache size", "timeseries",
      [('sum by (instance) (temporal_sticky_cache_size)', "{{instance}}")], 16)
next_line()


def var(name, query):
    return {"name": name, "type": "query", "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "query": {"query": query, "refId": name}, "definition": query,
            "includeAll": True, "multi": True, "allValue": ".*", "refresh": 2,
            "current": {"text": "All", "value": "$__all"}}


dashboard = {
    "title": "Cutover",
    "uid": "cutover",
    "description": "Rollouts, steps, DR drills, webhooks and worker health (github.com/cutover; monitoring/README in the repository).",
    "tags": ["cutover", "temporal", "releases"],
    "schemaVersion": 39,
    "version": 1,
    "editable": True,
    "time": {"from": "now-24h", "to": "now"},
    "refresh": "30s",
    "templating": {"list": [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Prometheus"},
        var("service", "label_values(cutover_rollouts_started_total, service)"),
        var("environment", "label_values(cutover_rollouts_started_total, environment)"),
    ]},
    "annotations": {"list": []},
    "panels": panels,
}
out = pathlib.Path(__file__).resolve().parent.parent / "monitoring" / "grafana-dashboard.json"
out.write_text(json.dumps(dashboard, indent=2) + "\n")
print(f"wrote {out}")
