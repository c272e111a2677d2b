/* AVX-512 fp32 FMA throughput: the CPU's real multiply-add ceiling (what the clock
 * and the FMA pipes allow, with no memory traffic).  Built and run by pytorch_cpu.py:
 *   cc -O2 -mavx512f -fopenmp bench/fma_peak.c -o fma_peak && ./fma_peak THREADS
 * Prints multiply-adds per second (one FMA lane = one multiply-add). */
#include <immintrin.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#define CHAINS 16 /* independent accumulators: > latency (4) x pipes (2) */

static double run(long iters) {
    double t0 = omp_get_wtime();
    float sink = 0.0f;
#pragma omp parallel reduction(+ : sink)
    {
        __m512 acc[CHAINS];
        __m512 a = _mm512_set1_ps(0.999999f), b = _mm512_set1_ps(1e-7f);
        for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_set1_ps((float)(c + omp_get_thread_num()));
        for (long i = 0; i < iters; i++) {
#pragma GCC unroll 16
            for (int c = 0; c < CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], a, b);
        }
        float s = 0.0f;
        for (int c = 0; c < CHAINS; c++) s += _mm512_reduce_add_ps(acc[c]);
        sink += s;
    }
    double t = omp_get_wtime() - t0;
    if (sink == 12345.678f) fprintf(stderr, "!");
    return t;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    omp_set_num_threads(threads);
    long iters = 20000000; /* 16 chains x 16 lanes x 2e7 = 5.1e9 MACs per thread */
    run(iters / 10);       /* warm-up: let the clock settle */
    double best = 1e30;
    for (int r = 0; r < 5; r++) {
        double t = run(iters);
        if (t < best) best = t;
    }
    double macs = (double)iters * CHAINS * 16 * threads;
    printf("%.6e\n", macs / best);
    return 0;
}
