#!/usr/bin/python3
# SPDX-License-Identifier: MIT
# Render TEMPLATE with the variables in VARS.json through Jinja2 itself, set up as Hugging Face
# transformers sets it up for chat templates. Prints the text; on a template error prints
# "TemplateError: MESSAGE" to stderr and exits 1 (raise_exception) or 2 (any other error).
import json
import sys

import jinja2.ext
from jinja2.exceptions import TemplateError
from jinja2.sandbox import ImmutableSandboxedEnvironment


class Raised(Exception):
    pass


def raise_exception(message):
    raise Raised(message)


def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                      sort_keys=sort_keys)


env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                    extensions=[jinja2.ext.loopcontrols])
env.filters["tojson"] = tojson
env.globals["raise_exception"] = raise_exception
env.globals["strftime_now"] = lambda fmt: __import__("time").strftime(
    fmt, __import__("time").gmtime(1785067200))

with open(sys.argv[1], encoding="utf-8") as f:
    source = f.read()
with open(sys.argv[2], encoding="utf-8") as f:
    variables = json.load(f)
try:
    sys.stdout.write(env.from_string(source).render(**variables))
except Raised as e:
    sys.stderr.write(f"TemplateError: {e}\n")
    sys.exit(1)
except (TemplateError, TypeError, ValueError, KeyError, AttributeError) as e:
    sys.stderr.write(f"{type(e).__name__}: {e}\n")
    sys.exit(2)
