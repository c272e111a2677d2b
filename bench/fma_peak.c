/* fp32 FMA throughput: the CPU's real multiply-add ceiling (what the clock and the FMA
 * pipes allow, with no memory traffic), on AVX-512 where the compiler targets it, else AVX2.
 * Built and run by pytorch_cpu.py:
 *   cc -O2 -march=native -fopenmp bench/fma_peak.c -o fma_peak && ./fma_peak THREADS
 *   (-mavx2 -mfma for the AVX2 ceiling of an AVX-512 CPU)
 * Prints multiply-adds per second (one FMA lane = one multiply-add). */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef __AVX512F__
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define STORE _mm512_storeu_ps
#else
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define STORE _mm256_storeu_ps
#endif

#define CHAINS 16 /* independent accumulators: > latency (4) x pipes (2) */

static double run(long iters) {
    double t0 = omp_get_wtime();
    float sink = 0.0f;
#pragma omp parallel reduction(+ : sink)
    {
        vec acc[CHAINS];
        vec a = SET1(0.999999f), b = SET1(1e-7f);
        for (int c = 0; c < CHAINS; c++) acc[c] = SET1((float)(c + omp_get_thread_num()));
        for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
            for (int c = 0; c < CHAINS; c++) acc[c] = FMA(acc[c], a, b);
        }
        float s = 0.0f;
        for (int c = 0; c < CHAINS; c++) {
            float lanes[LANES];
            STORE(lanes, acc[c]);
            for (int k = 0; k < LANES; k++) s += lanes[k];
        }
        sink += s;
    }
    double t = omp_get_wtime() - t0;
    if (sink == 12345.678f) fprintf(stderr, "!");
    return t;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    omp_set_num_threads(threads);
    long iters = 20000000; /* 16 chains x 16 lanes x 2e7 = 5.1e9 MACs per thread (AVX-512) */
    run(iters / 10);       /* warm-up: let the clock settle */
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = run(iters);
        if (t < best) best = t;
    }
    double macs = (double)iters * CHAINS * LANES * threads;
    printf("%.6e\n", macs / best);
    return 0;
}
