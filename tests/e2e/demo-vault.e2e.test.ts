// The demo journey on a real kind cluster, vault distribution (tests/e2e/demo-journey.ts).
import { demoJourney } from './demo-journey.ts';

demoJourney('vault');
