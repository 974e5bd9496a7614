/* SPDX-License-Identifier: MIT */
/*
 * A short libslm example: connect, ask for a story, print it as it comes.
 *
 *   cc example.c $(pkg-config --cflags --libs slm) -o example
 *   ./example "Once upon a time"
 */
#include <stdio.h>

#include "slm-client.h"

static bool on_token(const char *text, void *user_data)
{
        (void)user_data;
        fputs(text, stdout);
        fflush(stdout);
        return true; /* false would cancel */
}

int main(int argc, char **argv)
{
        SlmClient *client;
        SlmSession *session;
        SlmClientError err;
        SlmGenerateOptions opts;
        SlmFinish fin;

        if (slm_client_connect(SLM_BUS_SYSTEM, &client, &err) < 0) {
                fprintf(stderr, "connect: %s\n", err.message);
                return 1;
        }
        if (slm_client_create_session(client, NULL, &session, &err) < 0) {
                fprintf(stderr, "session: %s\n", err.message);
                slm_client_free(client);
                return 1;
        }
        slm_generate_options_init(&opts);
        opts.max_tokens = 64;
        if (slm_session_generate(session, argc > 1 ? argv[1] : "Once upon a time", &opts, on_token,
                                 NULL, &fin, &err) < 0)
                fprintf(stderr, "\ngenerate: %s (%s)\n", err.message, slm_status_name(err.status));
        else
                printf("\n[%s after %u tokens]\n", fin.reason, fin.tokens);
        slm_session_free(session);
        slm_client_free(client);
        return 0;
}
