/** Made-up credentials shared by the benchmark's processes (never real ones: everything runs on 127.0.0.1). */
export const BENCH_CREDS = {
  corpId: 'wwBENCH000000000',
  kfSecret: 'bench-secret-not-real',
  token: 'BenchToken',
  encodingAesKey: 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
};
export const BENCH_KF = 'wkBENCH_account';

/** The Official Account the OA figures play (AppID, Token, EncodingAESKey, `gh_` id), and its AppSecret. */
export const BENCH_MP = {
  appId: 'wxBENCH000000000',
  token: 'BenchMpToken',
  encodingAesKey: 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789abcdefg',
  ghId: 'gh_bench0000000',
};
export const BENCH_MP_SECRET = 'bench-mp-secret-not-real';
