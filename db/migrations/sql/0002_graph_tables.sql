-- traverse_answer's knowledge graph (DESIGN §4): the only tables of `public` that are the
-- service's own. Created when absent, so a database that already holds them keeps its rows.
-- Never queue for long behind the registry's own traffic: fail, and `make migrate` again.
SET LOCAL lock_timeout = '5s';
SET LOCAL statement_timeout = '10min';

CREATE TABLE IF NOT EXISTS public.graph_nodes (
    graph      text NOT NULL DEFAULT 'default',
    id         uuid NOT NULL,
    ntype      text,
    summary    text,
    props      jsonb NOT NULL DEFAULT '{}',
    tombstoned boolean NOT NULL DEFAULT false,
    PRIMARY KEY (graph, id)
);

CREATE TABLE IF NOT EXISTS public.graph_edges (
    graph  text NOT NULL DEFAULT 'default',
    id     uuid NOT NULL,
    etype  text,
    src    uuid NOT NULL,
    dst    uuid NOT NULL,
    weight double precision NOT NULL DEFAULT 1.0,
    props  jsonb NOT NULL DEFAULT '{}'
);

-- Seed search: full text over the summary and the property values.
-- Not CONCURRENTLY: the graph tables are the service's own, normally created empty just above;
-- on graph tables that already existed, the build only holds back the graph loader's writes
-- (traverse_answer reads on), and it is atomic with the rest of this revision.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS graph_nodes_fts_idx ON public.graph_nodes USING gin (
    (to_tsvector('simple', coalesce(summary, '') || ' ' || coalesce(jsonb_path_query_array(props, 'strict $.**')::text, '')))
);

-- Hop expansion: edges out of a frontier node, heaviest first, so traverse_answer reads only
-- the few edges it keeps of a hub (index-only walk, LIMIT per node). Not CONCURRENTLY: as above.
-- squawk-ignore require-concurrent-index-creation
CREATE INDEX IF NOT EXISTS graph_edges_expand_idx
    ON public.graph_edges (graph, src, weight DESC) INCLUDE (dst, etype);
