// The fuzz targets by name.
import type { Target } from './target';
import { netlinkTarget } from './netlink';
import { parsersTarget } from './parsers';
import { selftestTarget } from './selftest';

/** The targets of a campaign; `make fuzz` runs all but selftest, which tests the harness. */
export const targets: Record<string, Target> = { netlink: netlinkTarget, parsers: parsersTarget, selftest: selftestTarget };
export const CAMPAIGN_TARGETS = ['netlink', 'parsers'];
