#!/usr/bin/env python3
"""Prints the SQL that fills an empty zenml-run metadata store (ML Metadata schema 10, already
created by zenml-run, so the types and indexes are the real ones) with a large synthetic history,
for bench/metadata. Everything is generated inside the database (INSERT ... SELECT over a number
sequence), which is what makes millions of rows take minutes, not hours.

  generate.py --dialect sqlite|mysql [--scale 1.0] | sqlite3 store.db      (or | mariadb ... db)

At --scale 1: 100 pipelines, 100,000 runs of 10 steps, 1,000,000 executions (COMPLETE), each with
3 output artifacts (3,000,000 artifacts), and an INPUT event from the previous execution of the same
pipeline (so lineage chains are 10,000 executions long), about 37 million rows in all.
Records follow zenml-run's mapping (MLMDTransaction.swift): names, properties and events are those
the store itself writes, so the store's own read methods work on them.
"""
import argparse

STEPS_PER_RUN = 10
OUTPUTS_PER_EXECUTION = 3
T0_MS = 1_760_000_000_000


def L(text):
    """An SQL string literal (no quotes inside)."""
    return "'" + text + "'"


class Dialect:
    def __init__(self, name):
        self.name = name

    def cat(self, *parts):
        return " || ".join(parts) if self.name == "sqlite" else "CONCAT(" + ", ".join(parts) + ")"

    def idiv(self, a, b):
        return f"(({a}) / {b})" if self.name == "sqlite" else f"(({a}) DIV {b})"

    def digest(self, expr):
        inner = f"lower(hex(sha3({expr}, 256)))" if self.name == "sqlite" else f"SHA2({expr}, 256)"
        return self.cat("'sha256:'", inner)

    def seq(self, n):
        """A derived table with one column x = 1..n."""
        if self.name == "sqlite":
            return f"(SELECT x FROM bench_n WHERE x <= {n})"
        return f"(SELECT seq AS x FROM seq_1_to_{n})"

    def text(self, expr):
        return f"CAST({expr} AS TEXT)" if self.name == "sqlite" else f"CAST({expr} AS CHAR)"


def generate(d, scale):
    executions = max(STEPS_PER_RUN, int(1_000_000 * scale) // STEPS_PER_RUN * STEPS_PER_RUN)
    runs = executions // STEPS_PER_RUN
    pipelines = max(1, min(100, runs // 20))  # at least 20 runs per pipeline
    artifacts = executions * OUTPUTS_PER_EXECUTION
    P = pipelines
    out = []
    emit = out.append

    if d.name == "sqlite":
        emit("PRAGMA synchronous = OFF;")
        emit("PRAGMA cache_size = -1000000;")
        emit("PRAGMA temp_store = MEMORY;")
        emit("BEGIN;")
        emit("CREATE TEMP TABLE bench_n (x INTEGER PRIMARY KEY);")
        emit(f"INSERT INTO bench_n WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < {artifacts}) SELECT x FROM c;")
    else:
        emit("SET SESSION unique_checks = 0;")
        emit("SET SESSION foreign_key_checks = 0;")
        emit("SET SESSION sql_log_bin = 0;")

    # Artifact types as zenml-run registers them (MLMDTransaction.artifactTypeID).
    for name in ("Examples", "Model", "Statistics"):
        emit(f"INSERT INTO `Type` (`name`, `type_kind`) SELECT '{name}', 1 FROM `MLMDEnv` WHERE NOT EXISTS (SELECT 1 FROM `Type` WHERE name = '{name}' AND type_kind = 1);")
        for prop, dtype in (("digest", 3), ("size", 2), ("file_count", 1)):
            emit(f"INSERT INTO `TypeProperty` (`type_id`, `name`, `data_type`) SELECT id, '{prop}', {dtype} FROM `Type` t WHERE name = '{name}' AND type_kind = 1 "
                 f"AND NOT EXISTS (SELECT 1 FROM `TypeProperty` p WHERE p.type_id = t.id AND p.name = '{prop}');")
    temp = "TEMP" if d.name == "sqlite" else "TEMPORARY"
    emit(f"CREATE {temp} TABLE bench_t AS SELECT "
         "(SELECT id FROM `Type` WHERE name = 'zenml.Pipeline' AND type_kind = 2) AS pipeline_t, "
         "(SELECT id FROM `Type` WHERE name = 'zenml.PipelineVersion' AND type_kind = 2) AS version_t, "
         "(SELECT id FROM `Type` WHERE name = 'zenml.PipelineRun' AND type_kind = 2) AS run_t, "
         "(SELECT id FROM `Type` WHERE name = 'zenml.Step' AND type_kind = 0) AS step_t, "
         "(SELECT id FROM `Type` WHERE name = 'Examples' AND type_kind = 1) AS a0, "
         "(SELECT id FROM `Type` WHERE name = 'Model' AND type_kind = 1) AS a1, "
         "(SELECT id FROM `Type` WHERE name = 'Statistics' AND type_kind = 1) AS a2;")

    # Contexts: pipelines 1..P, versions P+1..2P, runs 2P+1..2P+R (run r is pipeline r % P).
    pname = lambda p: d.cat("'bench-p'", d.text(p))
    emit("INSERT INTO `Context` (`id`, `type_id`, `name`, `create_time_since_epoch`, `last_update_time_since_epoch`) "
         f"SELECT x, pipeline_t, {pname('x - 1')}, {T0_MS}, {T0_MS} FROM {d.seq(P)} s, bench_t;")
    emit("INSERT INTO `Context` (`id`, `type_id`, `name`, `create_time_since_epoch`, `last_update_time_since_epoch`) "
         f"SELECT {P} + x, version_t, {d.cat(pname('x - 1'), L('@'), d.digest(d.cat(L('spec'), d.text('x - 1'))))}, {T0_MS}, {T0_MS} FROM {d.seq(P)} s, bench_t;")
    emit("INSERT INTO `ContextProperty` (`context_id`, `name`, `is_custom_property`, `string_value`) "
         f"SELECT {P} + x, 'pipeline', 0, {pname('x - 1')} FROM {d.seq(P)} s;")
    emit("INSERT INTO `ContextProperty` (`context_id`, `name`, `is_custom_property`, `string_value`) "
         f"SELECT {P} + x, 'spec_digest', 0, {d.digest(d.cat(L('spec'), d.text('x - 1')))} FROM {d.seq(P)} s;")
    emit("INSERT INTO `ContextProperty` (`context_id`, `name`, `is_custom_property`, `string_value`) "
         f"SELECT {P} + x, 'spec', 0, '{{}}' FROM {d.seq(P)} s;")
    emit(f"INSERT INTO `ParentContext` (`context_id`, `parent_context_id`) SELECT {P} + x, x FROM {d.seq(P)} s;")

    run_ctx = lambda r: f"(2 * {P} + 1 + ({r}))"
    emit("INSERT INTO `Context` (`id`, `type_id`, `name`, `create_time_since_epoch`, `last_update_time_since_epoch`) "
         f"SELECT {run_ctx('x - 1')}, run_t, {d.cat(L('bench-r'), d.text('x - 1'))}, {T0_MS} + x * 10000, {T0_MS} + x * 10000 + 9000 FROM {d.seq(runs)} s, bench_t;")
    run_props = [
        ("pipeline", "string_value", pname(f"(x - 1) % {P}")),
        ("spec_digest", "string_value", d.digest(d.cat("'spec'", d.text(f"(x - 1) % {P}")))),
        ("state", "string_value", "'complete'"),
        ("started_at", "double_value", f"{T0_MS} + x * 10000"),
        ("ended_at", "double_value", f"{T0_MS} + x * 10000 + 9000"),
        ("environment", "string_value", "'{}'"),
        ("workspace", "string_value", "'/bench'"),
        ("pipeline_file", "string_value", d.cat("'/bench/'", pname(f"(x - 1) % {P}"), "'.yaml'")),
    ]
    for name, column, expr in run_props:
        emit(f"INSERT INTO `ContextProperty` (`context_id`, `name`, `is_custom_property`, `{column}`) "
             f"SELECT {run_ctx('x - 1')}, '{name}', 0, {expr} FROM {d.seq(runs)} s;")
    emit(f"INSERT INTO `ParentContext` (`context_id`, `parent_context_id`) SELECT {run_ctx('x - 1')}, 1 + (x - 1) % {P} FROM {d.seq(runs)} s;")
    emit(f"INSERT INTO `ParentContext` (`context_id`, `parent_context_id`) SELECT {run_ctx('x - 1')}, {P} + 1 + (x - 1) % {P} FROM {d.seq(runs)} s;")

    # Executions 1..E: execution x is step (x-1) % 10 of run (x-1) / 10.
    run_of = d.idiv("x - 1", STEPS_PER_RUN)
    step_of = f"((x - 1) % {STEPS_PER_RUN})"
    exec_name = d.cat("'bench-r'", d.text(run_of), "'/step'", d.text(step_of))
    emit("INSERT INTO `Execution` (`id`, `type_id`, `last_known_state`, `name`, `create_time_since_epoch`, `last_update_time_since_epoch`) "
         f"SELECT x, step_t, 3, {exec_name}, {T0_MS} + x * 1000, {T0_MS} + x * 1000 + 900 FROM {d.seq(executions)} s, bench_t;")
    exec_props = [
        ("run_id", "string_value", d.cat("'bench-r'", d.text(run_of))),
        ("pipeline", "string_value", pname(f"{run_of} % {P}")),
        ("step", "string_value", d.cat("'step'", d.text(step_of))),
        ("cache_key", "string_value", d.digest(d.cat("'key'", d.text("x")))),
        ("bundle_digest", "string_value", d.digest(d.cat("'bundle'", d.text(step_of)))),
        ("config", "string_value", "'{\"k\":1}'"),
        ("started_at", "double_value", f"{T0_MS} + x * 1000"),
        ("ended_at", "double_value", f"{T0_MS} + x * 1000 + 900"),
        ("exit_code", "int_value", "0"),
    ]
    for name, column, expr in exec_props:
        emit(f"INSERT INTO `ExecutionProperty` (`execution_id`, `name`, `is_custom_property`, `{column}`) "
             f"SELECT x, '{name}', 0, {expr} FROM {d.seq(executions)} s;")
    emit(f"INSERT INTO `Association` (`context_id`, `execution_id`) SELECT {run_ctx(run_of)}, x FROM {d.seq(executions)} s;")
    emit(f"INSERT INTO `Association` (`context_id`, `execution_id`) SELECT 1 + {run_of} % {P}, x FROM {d.seq(executions)} s;")

    # Artifacts 1..3E: artifact x is output (x-1) % 3 of execution (x-1) / 3 + 1.
    exec_of = f"({d.idiv('x - 1', OUTPUTS_PER_EXECUTION)} + 1)"
    out_of = f"((x - 1) % {OUTPUTS_PER_EXECUTION})"
    emit("INSERT INTO `Artifact` (`id`, `type_id`, `uri`, `state`, `name`, `create_time_since_epoch`, `last_update_time_since_epoch`) "
         f"SELECT x, CASE {out_of} WHEN 0 THEN a0 WHEN 1 THEN a1 ELSE a2 END, {d.cat(L('/bench/artifacts/'), d.text('x'))}, 2, "
         f"{d.cat(L('bench-r'), d.text(d.idiv(exec_of + ' - 1', STEPS_PER_RUN)), L('/step'), d.text(f'(({exec_of} - 1) % {STEPS_PER_RUN})'), L('/out'), d.text(out_of))}, "
         f"{T0_MS} + x * 333, {T0_MS} + x * 333 FROM {d.seq(artifacts)} s, bench_t;")
    for name, column, expr in (("digest", "string_value", d.digest(d.cat("'artifact'", d.text("x")))),
                               ("size", "double_value", "1000 + x % 1000"), ("file_count", "int_value", "1")):
        emit(f"INSERT INTO `ArtifactProperty` (`artifact_id`, `name`, `is_custom_property`, `{column}`) "
             f"SELECT x, '{name}', 0, {expr} FROM {d.seq(artifacts)} s;")
    emit(f"INSERT INTO `Attribution` (`context_id`, `artifact_id`) SELECT {run_ctx(d.idiv(exec_of + ' - 1', STEPS_PER_RUN))}, x FROM {d.seq(artifacts)} s;")

    # OUTPUT events (event x = artifact x), then an INPUT event for every execution that has a
    # predecessor in its pipeline: the previous step, or the last step of the pipeline's previous run.
    emit("INSERT INTO `Event` (`id`, `artifact_id`, `execution_id`, `type`, `milliseconds_since_epoch`) "
         f"SELECT x, x, {exec_of}, 4, {T0_MS} + x * 333 FROM {d.seq(artifacts)} s;")
    emit("INSERT INTO `EventPath` (`event_id`, `is_index_step`, `step_index`, `step_key`) "
         f"SELECT x, 0, NULL, {d.cat(L('out'), d.text(out_of))} FROM {d.seq(artifacts)} s;")
    previous = f"CASE WHEN {step_of} > 0 THEN x - 1 ELSE x - {STEPS_PER_RUN * P} + {STEPS_PER_RUN - 1} END"
    has_previous = f"({step_of} > 0 OR x > {STEPS_PER_RUN * P})"
    emit("INSERT INTO `Event` (`id`, `artifact_id`, `execution_id`, `type`, `milliseconds_since_epoch`) "
         f"SELECT {artifacts} + x, {OUTPUTS_PER_EXECUTION} * ({previous} - 1) + 1, x, 3, {T0_MS} + x * 1000 FROM {d.seq(executions)} s WHERE {has_previous};")
    emit("INSERT INTO `EventPath` (`event_id`, `is_index_step`, `step_index`, `step_key`) "
         f"SELECT {artifacts} + x, 0, NULL, 'in' FROM {d.seq(executions)} s WHERE {has_previous};")
    emit("INSERT INTO `EventPath` (`event_id`, `is_index_step`, `step_index`, `step_key`) "
         f"SELECT {artifacts} + x, 1, 0, NULL FROM {d.seq(executions)} s WHERE {has_previous};")

    if d.name == "sqlite":
        emit("COMMIT;")
        emit("ANALYZE;")
    else:
        for table in ("Context", "ContextProperty", "Execution", "ExecutionProperty", "Artifact", "ArtifactProperty", "Event", "EventPath", "Association", "Attribution", "ParentContext"):
            emit(f"ANALYZE TABLE `{table}`;")
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dialect", choices=("sqlite", "mysql"), required=True)
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 1,000,000 executions and 3,000,000 artifacts")
    args = parser.parse_args()
    print(generate(Dialect(args.dialect), args.scale), end="")


if __name__ == "__main__":
    main()
