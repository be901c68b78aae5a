"""User errors: a one-line (or a few-line) message naming the file, the line and the problem, as the engine's
SpartanError. The command line prints them without a traceback and exits 1."""


class SpartanError(Exception):
    pass


def describe_problems(problems, max_shown=10):
    """As the CLI's describeProblems: `  file:line[:column]: message` per problem, the first `max_shown`."""
    lines = ["  %s:%d%s: %s" % (p["file"], p["line"], ":%d" % p["column"] if p.get("column") else "", p["message"])
             for p in problems[:max_shown]]
    if len(problems) > max_shown:
        lines.append("  \u2026 and %d more" % (len(problems) - max_shown))
    return "\n".join(lines)
