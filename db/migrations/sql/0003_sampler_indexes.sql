-- The sampler's indexes on the registry's runtime_captures (DESIGN §7.1, §10.2). Built
-- CONCURRENTLY, outside any transaction (the revision runs this file in an autocommit block,
-- one statement at a time): the registry's recorder keeps inserting while they build. A build
-- that failed leaves an INVALID index under the same name, which IF NOT EXISTS would keep; the
-- revision drops such an index (DROP INDEX CONCURRENTLY) before this file runs again.
-- No lock_timeout or statement_timeout here: a concurrent build waits for every transaction
-- already running on the table and then scans it whole (minutes on a large table), never
-- blocking the registry's writes meanwhile; a timeout would only leave an INVALID index behind.
-- squawk-ignore-file require-lock-timeout, require-statement-timeout
--
-- Path index: a literal endpoint's exact path newest first, and a template's literal-prefix
-- range (~>=~ / ~<~, hence text_pattern_ops); the id makes both index-only.
CREATE INDEX CONCURRENTLY IF NOT EXISTS runtime_captures_path_idx
    ON public.runtime_captures (workspace_id, upper(method), path text_pattern_ops, occurred_at DESC) INCLUDE (id);

-- Recent index: a hot template's newest-first walk, the pattern filtering the included path.
CREATE INDEX CONCURRENTLY IF NOT EXISTS runtime_captures_recent_idx
    ON public.runtime_captures (workspace_id, upper(method), occurred_at DESC) INCLUDE (path, id);
