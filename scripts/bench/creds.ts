/** Made-up credentials shared by the benchmark's processes (never real ones: everything runs on 127.0.0.1). */
export const BENCH_CREDS = {
  corpId: 'wwBENCH000000000',
  kfSecret: 'bench-secret-not-real',
  token: 'BenchToken',
  encodingAesKey: 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
};
export const BENCH_KF = 'wkBENCH_account';
