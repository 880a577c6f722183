"""Cuts Markdown files into chunks for `kiln vectors import --embed text`: one chunk per section (a heading and the
text up to the next heading), long sections split at paragraph breaks so that no chunk is much longer than the
model reads (all-MiniLM-L6-v2 reads 256 tokens, about 1,000 characters of English).

usage: python3 chunk_docs.py DOCS_DIR OUT.jsonl
Each line of OUT.jsonl: {"id": N, "file": "tracking.md", "heading": "Registry, aliases and rollback", "text": "..."}
"""
import json
import pathlib
import re
import sys

MAX_CHARS = 1000
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def sections(path):
    """(title, heading, body) for each section of a Markdown file; headings inside code fences are text."""
    title, heading, body, fenced = path.stem, None, [], False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        m = None if fenced else HEADING.match(line)
        if m:
            if heading is not None or body:
                yield title, heading or title, "\n".join(body).strip()
            if len(m.group(1)) == 1:
                title = m.group(2)
            heading, body = m.group(2), []
        else:
            body.append(line)
    if heading is not None or body:
        yield title, heading or title, "\n".join(body).strip()


def pieces(body):
    """The body in pieces of at most about MAX_CHARS, cut between paragraphs."""
    piece = ""
    for paragraph in re.split(r"\n\s*\n", body):
        if piece and len(piece) + len(paragraph) > MAX_CHARS:
            yield piece
            piece = ""
        piece = f"{piece}\n\n{paragraph}" if piece else paragraph
    if piece:
        yield piece


def main():
    docs, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    n = 0
    with out.open("w", encoding="utf-8") as f:
        for path in sorted(docs.glob("*.md")):
            for title, heading, body in sections(path):
                for piece in pieces(body):
                    n += 1
                    text = heading if heading == title else f"{title}: {heading}"
                    f.write(json.dumps({"id": n, "file": path.name, "heading": heading, "text": f"{text}\n\n{piece}"}) + "\n")
    print(f"{n} chunks from {docs} in {out}", file=sys.stderr)


if __name__ == "__main__":
    main()
