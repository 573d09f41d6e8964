-- events_by_kind (stream_kind, seq) served only `crisp events --kind`, which filters the rows
-- it walks in seq order anyway. Every append paid for it with one more b-tree page in its WAL
-- commit: a single-event append runs about a seventh faster without it (bench/event-log.bench.ts).
DROP INDEX IF EXISTS events_by_kind;
