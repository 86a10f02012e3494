// The demo journey on a real kind cluster, openbao distribution (tests/e2e/demo-journey.ts).
import { demoJourney } from './demo-journey.ts';

demoJourney('openbao');
