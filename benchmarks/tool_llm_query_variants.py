"""llm-query variants on a 10-query sample of one tool set, all from ONE model rewrite per request.

    nice -n 5 .venv/bin/python benchmarks/tool_llm_query_variants.py SET [MODEL]   # MODEL: a get_model spec, default local

Prints each request, its gold tools and the generated lines (JSON), then nDCG@10 of: dense on the request;
"interleave" (what ToolCatalog's llm-query does with llm_base=dense); the request's list interleaved first;
RRF of the request and the lines; the lines joined into one query. Same sample as tool_retrieval.py --sample 10.
"""
import json, random, sys
sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parent))
from tool_retrieval import LOADERS, DATA
from sleuth.llm import get_model
from sleuth.retrieval.embeddings import CachedEmbedder, get_embedder
from sleuth.retrieval.tool_catalog import ToolCatalog
from sleuth.records import Hit
from sleuth.retrieval.hybrid import reciprocal_rank_fusion
import numpy as np

tools, queries, gold = LOADERS[sys.argv[1]](DATA)
pool = sorted(q for q in queries if q in gold)
qids = random.Random(0).sample(pool, 10)
emb = CachedEmbedder(get_embedder("minilm"), "/tmp/sleuth-tool-eval-embeddings.sqlite")
cat = ToolCatalog(tools, embedder=emb, model=get_model(sys.argv[2] if len(sys.argv) > 2 else "local"))
def ndcg(names, g):
    dcg = sum(1/np.log2(r+2) for r, n in enumerate(names[:10]) if n in g)
    return dcg / sum(1/np.log2(r+2) for r in range(min(len(g), 10)))
res = {"interleave": [], "interleave+request": [], "rrf(lines,request)": [], "joined-lines": [], "dense": []}
for q in qids:
    lines = cat.generate_queries(queries[q]) or [queries[q]]
    print(json.dumps({"request": queries[q], "gold": gold[q], "lines": lines}))
    def ranked(texts):
        return [[cat.tools[i].name for i, _ in lst] for lst in cat._rank_dense(texts, 10)]
    L = ranked(lines); R = ranked([queries[q]])[0]; J = ranked([" ".join(lines)])[0]
    def inter(lists):
        out = []
        for r in range(10):
            for l in lists:
                if r < len(l) and l[r] not in out: out.append(l[r])
        return out
    res["interleave"].append(ndcg(inter(L), gold[q]))
    res["interleave+request"].append(ndcg(inter([R] + L), gold[q]))
    rrf = reciprocal_rank_fusion([[Hit(doc_id=n) for n in l] for l in [R] + L])
    res["rrf(lines,request)"].append(ndcg([h.doc_id for h in rrf], gold[q]))
    res["joined-lines"].append(ndcg(J, gold[q]))
    res["dense"].append(ndcg(R, gold[q]))
print({k: round(float(np.mean(v)), 3) for k, v in res.items()})
