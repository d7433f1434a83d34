import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { open, rename } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { ApiError } from '../src/core/errors.js';
import { ImageStore, realImageStoreFs } from '../src/server/image-store.js';

const PNG = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('not really the rest of a png')]);
const png = (n: number): Buffer => Buffer.concat([PNG, Buffer.from(String(n))]);

const root = mkdtempSync(path.join(os.tmpdir(), 'image-store-test-'));
after(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
const freshDir = (): string => path.join(root, `case-${counter++}`);

function fsError(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: simulated failure, write '/secret/place/x.tmp'`), { code });
}

async function rejection(promise: Promise<unknown>): Promise<ApiError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ApiError, `an ApiError, not ${String(error)}`);
    return error;
  }
  assert.fail('expected a rejection');
}

describe('ImageStore', () => {
  test('a failed folder creation is not cached: the next save tries again', async () => {
    const base = freshDir();
    mkdirSync(base);
    const blocker = path.join(base, 'blocker');
    writeFileSync(blocker, 'a file where the folder should be');
    const dir = path.join(blocker, 'images');
    const store = new ImageStore(dir);
    const error = await rejection(store.save(png(1)));
    assert.equal(error.status, 500);
    assert.equal(error.code, 'image_store_error');
    assert.match(error.message, /cannot create the image folder/);
    assert.ok(!error.message.includes(base), 'no server path in what the client sees');
    rmSync(blocker);
    const name = await store.save(png(1));
    assert.match(name, /^[0-9a-f]{32}\.png$/);
    assert.ok(readFileSync(path.join(dir, name)).equals(png(1)));
  });

  test('init() removes only the stale temporary files of interrupted saves, and is fine without a folder', async () => {
    await new ImageStore(path.join(freshDir(), 'missing')).init();
    const dir = freshDir();
    mkdirSync(dir);
    const hex32 = 'a'.repeat(32);
    const stale = [`${hex32}.png.0123456789ab.tmp`, `${'b'.repeat(32)}.webp.ffffffffffff.tmp`];
    const kept = [`${hex32}.png`, 'keep.tmp', 'notes.txt', `${hex32}.png.0123456789ab.tmp.bak`, `${hex32}.png.xyz.tmp`, `${hex32}.exe.0123456789ab.tmp`];
    for (const name of [...stale, ...kept]) writeFileSync(path.join(dir, name), 'x');
    mkdirSync(path.join(dir, `${'c'.repeat(32)}.gif.0123456789ab.tmp.d`));
    const store = new ImageStore(dir);
    await store.init();
    await store.init(); // idempotent
    assert.deepEqual(readdirSync(dir).sort(), [...kept, `${'c'.repeat(32)}.gif.0123456789ab.tmp.d`].sort());
  });

  test('the first save sweeps stale temporary files too', async () => {
    const dir = freshDir();
    mkdirSync(dir);
    const stale = `${'d'.repeat(32)}.jpg.abcdefabcdef.tmp`;
    writeFileSync(path.join(dir, stale), 'half an image');
    const name = await new ImageStore(dir).save(png(2));
    assert.deepEqual(readdirSync(dir), [name]);
  });

  for (const code of ['ENOSPC', 'EDQUOT']) {
    test(`a full disk (${code}) is a 507 insufficient_storage and leaves no temporary file`, async () => {
      const dir = freshDir();
      const store = new ImageStore(dir, {
        fs: {
          async writeDurably(file, bytes) {
            writeFileSync(file, bytes.subarray(0, 5)); // half written when the disk fills up
            throw fsError(code);
          },
        },
      });
      const error = await rejection(store.save(png(3)));
      assert.equal(error.status, 507);
      assert.equal(error.code, 'insufficient_storage');
      assert.match(error.message, /^the image store is out of disk space/);
      assert.deepEqual(error.toBody().error.code, 'insufficient_storage');
      assert.deepEqual(readdirSync(dir), [], 'the temporary file was removed');
      // The disk has room again: the same image saves.
      const healthy = new ImageStore(dir);
      assert.match(await healthy.save(png(3)), /^[0-9a-f]{32}\.png$/);
    });
  }

  for (const [code, words] of [
    ['EACCES', /no permission/],
    ['EROFS', /read-only file system/],
  ] as const) {
    test(`${code} is a 500 image_store_error naming the folder problem, without a path or a stack`, async () => {
      const dir = freshDir();
      const store = new ImageStore(dir, {
        fs: {
          async rename(from) {
            assert.ok(existsSync(from));
            throw fsError(code);
          },
        },
      });
      const error = await rejection(store.save(png(4)));
      assert.equal(error.status, 500);
      assert.equal(error.code, 'image_store_error');
      assert.match(error.message, /^the image store cannot write to the image folder/);
      assert.match(error.message, words);
      assert.ok(error.message.includes(code));
      assert.ok(!error.message.includes('/secret/place') && !error.message.includes(dir) && !/\n\s+at /.test(error.message), error.message);
      assert.deepEqual(readdirSync(dir), [], 'the temporary file was removed');
    });
  }

  test('the temporary file is fsynced before the rename, the folder after it', async () => {
    const dir = freshDir();
    const events: string[] = [];
    const probe = await open(path.join(root, 'probe'), 'w');
    const prototype = Object.getPrototypeOf(probe) as { sync(): Promise<void> };
    await probe.close();
    const realSync = prototype.sync;
    prototype.sync = async function (this: unknown) {
      events.push('sync');
      return realSync.call(this);
    };
    try {
      const store = new ImageStore(dir, {
        fs: {
          rename: async (from, to) => {
            events.push('rename');
            await rename(from, to);
          },
          syncDir: async (folder) => {
            events.push('syncDir');
            await realImageStoreFs.syncDir(folder);
          },
        },
      });
      const name = await store.save(png(5));
      assert.deepEqual(events, ['sync', 'rename', 'syncDir', 'sync']);
      assert.ok(readFileSync(path.join(dir, name)).equals(png(5)));
      assert.deepEqual(readdirSync(dir), [name]);
    } finally {
      prototype.sync = realSync;
    }
  });

  test('a folder fsync the platform refuses does not fail the save', async () => {
    const dir = freshDir();
    const store = new ImageStore(dir, { fs: { syncDir: () => Promise.reject(fsError('EISDIR')) } });
    assert.match(await store.save(png(6)), /^[0-9a-f]{32}\.png$/);
  });
});
