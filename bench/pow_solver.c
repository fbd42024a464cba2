/* A native ALTCHA (v1) solver: what an attacker runs instead of the browser widget.
 *
 * Reads challenges from stdin, one per line: "<salt> <challenge hex> <max_number>", and
 * writes for each "<number> <hashes tried>" (or "-1 <hashes>" if none is found up to
 * max_number). It scans from 0 upwards, as the widget does, one SHA-256 of salt + decimal
 * number per try, keeping the decimal string in a buffer it increments in place (no printf in
 * the loop). A last line "cpu <seconds>" gives the process CPU time spent solving, so the
 * benchmark's rate is per core even on a busy machine.
 *
 * Built by bench/pow_flood.py: gcc -O2 pow_solver.c -lcrypto (OpenSSL's SHA-256, with the
 * SHA extensions where the CPU has them).
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_SALT 256
#define MAX_DIGITS 20

static int unhex(const char *text, unsigned char *out, size_t length) {
    for (size_t i = 0; i < length; i++) {
        unsigned int byte;
        if (sscanf(text + 2 * i, "%2x", &byte) != 1) return -1;
        out[i] = (unsigned char)byte;
    }
    return 0;
}

static double cpu_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

/* Adds one to the decimal number in message[start..*end), growing it by a digit on carry. */
static void increment(unsigned char *message, size_t start, size_t *end) {
    size_t i = *end;
    while (i > start) {
        i--;
        if (message[i] != '9') {
            message[i]++;
            return;
        }
        message[i] = '0';
    }
    memmove(message + start + 1, message + start, *end - start);
    message[start] = '1';
    (*end)++;
}

int main(void) {
    char salt[MAX_SALT + 1], hex[65];
    long long max_number;
    unsigned char target[SHA256_DIGEST_LENGTH], digest[SHA256_DIGEST_LENGTH];
    unsigned char message[MAX_SALT + MAX_DIGITS + 2];
    double spent = 0.0;

    while (scanf("%256s %64s %lld", salt, hex, &max_number) == 3) {
        if (strlen(hex) != 64 || unhex(hex, target, sizeof target) != 0) return 2;
        size_t start = strlen(salt), end = start + 1;
        memcpy(message, salt, start);
        message[start] = '0';
        /* The salt's state is hashed once; each try resumes from a copy of it (the
         * "midstate": the whole message fits one block here, so this saves the call setup
         * rather than a compression, but it is what a tuned solver does). */
        SHA256_CTX salted, ctx;
        SHA256_Init(&salted);
        SHA256_Update(&salted, message, start);
        double began = cpu_seconds();
        long long number = 0, found = -1;
        for (; number <= max_number; number++) {
            ctx = salted;
            SHA256_Update(&ctx, message + start, end - start);
            SHA256_Final(digest, &ctx);
            if (memcmp(digest, target, sizeof digest) == 0) {
                found = number;
                break;
            }
            increment(message, start, &end);
        }
        spent += cpu_seconds() - began;
        printf("%lld %lld\n", found, found < 0 ? max_number + 1 : found + 1);
        fflush(stdout);
    }
    printf("cpu %.6f\n", spent);
    return 0;
}
