// cluster-key-slot (the CRC16 that ioredis itself uses to route keys) ships no type declarations.
declare module 'cluster-key-slot' {
  /** The Redis Cluster hash slot (0-16383) of a key, honouring its `{hash tag}`. */
  export default function calculateSlot(key: string | Buffer): number;
}
