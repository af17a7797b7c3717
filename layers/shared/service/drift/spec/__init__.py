"""What the contract says: the spec a request names, read, parsed within bounds, and sliced.

One module per idea, lower ones first (none imports a higher one):

- ``collector``: the garbage collector kept out of bulk allocation;
- ``paths``: path templates, how they match, which one owns a path (DESIGN §7.1);
- ``sampling_plan``: the requested endpoints compiled for the sampler's one SQL statement;
- ``parsing``: a text to a JSON-shaped tree within bounds (YAML depth, alias bombs);
- ``references``: JSON pointers, which ``$ref`` are followed, and their breadth-first closure;
- ``parts``: the pieces a slice is made of, full or without prose;
- ``slicing``: the prompt's slice of a document, cut to a budget (DESIGN §7.2);
- ``document``: a parsed OpenAPI 3.x / Swagger 2.0 document and its declared operations;
- ``cache``: texts seen by this warm process, their sha256 and parsed document;
- ``source``: where the text comes from, inline or an S3 object.
"""
