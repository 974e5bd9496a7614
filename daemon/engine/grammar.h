/* SPDX-License-Identifier: MIT */
/*
 * Constrained generation: a context-free grammar in GBNF (as llama.cpp
 * writes it) or compiled from a JSON Schema, matched over the text a
 * generation produces, so that only tokens which keep the text a valid
 * prefix can be sampled and the generation ends when the text is complete.
 *
 * The matcher is a set of pushdown stacks over the grammar's elements,
 * advanced one code point at a time. The tokens allowed next come from a
 * walk of the vocabulary's trie that prunes every prefix the grammar
 * refuses, and are remembered per grammar position: a string or a number
 * being written stays at one position, so most steps cost a lookup.
 *
 * GBNF: rules "name ::= alternatives"; "literal" strings, [a-z] classes
 * ([^...] negated), "." any character, ( groups ), repetition * + ? {m}
 * {m,} {m,n}, # comments; escapes \n \r \t \\ \" \] \xHH \uHHHH
 * \UHHHHHHHH. "root" is where the text starts. Left recursion is refused.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "tokenizer.h"
#include "value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct SlmGrammar SlmGrammar;

/* -EINVAL with the line and what is wrong in @err. */
int slm_grammar_parse(const char *gbnf, size_t len, SlmGrammar **ret, SlmError *err);
SlmGrammar *slm_grammar_free(SlmGrammar *g);

/*
 * A JSON Schema as GBNF text (malloc'ed): types, properties, required,
 * additionalProperties (false or a schema), enum, const, anyOf/oneOf,
 * items, minItems, maxItems, minLength, maxLength, minimum/maximum and
 * their exclusive forms (whole numbers; a bounded number is written
 * without an exponent), $ref to #/$defs/... and #/definitions/..., null.
 * What the grammar cannot honour (patterns, formats, fractional bounds,
 * ...) is refused: -EINVAL naming it.
 */
int slm_json_schema_to_gbnf(const char *schema, size_t len, char **ret_gbnf, SlmError *err);

/*
 * The rules of a JSON Schema alone, numbered from r@first on, appended to
 * @out (a SlmBuf from value.h); *ret_root is the number of the schema's own
 * rule. They use the rules slm_json_schema_common_rules() writes (ws,
 * string, char, value, object, array, number), which a grammar holds once.
 */
int slm_json_schema_rules(const char *schema, size_t len, int first, SlmBuf *out, int *ret_root,
                          SlmError *err);
void slm_json_schema_common_rules(SlmBuf *out);

/* The vocabulary as the matcher walks it: each token's text as code points, in a trie. */
typedef struct SlmTokenTrie SlmTokenTrie;

int slm_token_trie_new(const SlmTokenizer *tk, SlmTokenTrie **ret);
SlmTokenTrie *slm_token_trie_free(SlmTokenTrie *t);

/* One generation's place in a grammar. */
typedef struct SlmGrammarMatcher SlmGrammarMatcher;

int slm_grammar_matcher_new(const SlmGrammar *g, const SlmTokenTrie *t, SlmGrammarMatcher **ret);
SlmGrammarMatcher *slm_grammar_matcher_free(SlmGrammarMatcher *m);

/*
 * Set to -INFINITY the logits of the tokens that cannot come next: every
 * token whose text the grammar refuses here, every control token, and the
 * end-of-generation tokens unless the text is complete. Returns how many
 * tokens remain allowed (0: a dead end), or -E2BIG when the grammar is too
 * ambiguous to follow.
 */
int slm_grammar_matcher_mask(SlmGrammarMatcher *m, float *logits);
/*
 * The same for a sampler that keeps only the @k most likely tokens (greedy:
 * 1; 0: all): where the grammar allows at least @k of the best tokens, only
 * those @k are left and the rest of the vocabulary is not looked at. What the
 * sampler then draws from is what the whole mask would leave it.
 */
int slm_grammar_matcher_mask_top(SlmGrammarMatcher *m, float *logits, int k);
/* Take the chosen token's text. -EINVAL when the grammar refuses it. */
int slm_grammar_matcher_accept(SlmGrammarMatcher *m, int32_t token);
/* Take @len bytes of text (UTF-8). -EINVAL when the grammar refuses it. */
int slm_grammar_matcher_accept_text(SlmGrammarMatcher *m, const char *text, size_t len);
/* The text so far is a whole sentence of the grammar. */
bool slm_grammar_matcher_complete(const SlmGrammarMatcher *m);
/* Complete, and nothing may follow: the generation is over. */
bool slm_grammar_matcher_finished(const SlmGrammarMatcher *m);

/* Whether @len bytes of @text are a whole sentence of @g (tests, tools). */
bool slm_grammar_matches(const SlmGrammar *g, const char *text, size_t len);

#ifdef __cplusplus
}
#endif
