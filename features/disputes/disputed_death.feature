Feature: A death that others dispute
  As a case worker of an ombudsman's office,
  I want a death asserted by one source kept beside later reports that the person was seen alive,
  and the register to refuse custody facts that contradict a recorded death until that death is retracted,
  so that families' doubts are recorded rather than overwritten, and the record never has a dead person moved.

  Background:
    Given the case worker has opened a case for the prisoner of war "Aram Testyan", a national of AM
    And the case worker has recorded that AZ captured the person at "Hadrut" on 2020-11-09, according to the ICRC
    And the case worker has recorded that AZ asserted the person died at "Baku" on 2021-01-05

  Scenario: The family reports the person seen alive after the asserted death
    When the case worker records that the family saw the person alive at "Baku" on 2021-03-02
    Then the register answers 201
    And the case is at version 4
    And the person's status is "deceased"
    And the case is disputed about life
    And in the dispute about life, AZ says "dead"
    And in the dispute about life, the family says "seen alive"

  Scenario: A custody fact dated after the death is refused until the death is retracted
    Given the case worker has recorded that the family saw the person alive at "Baku" on 2021-03-02
    When the case worker records that AZ held the person at "Baku" on 2021-04-01, according to the ICRC
    Then the register answers 409 "invalid-transition"
    And nothing was recorded: the case is still at version 4

    When the case worker retracts version 3, because "the death notice named another prisoner"
    Then the register answers 201
    And the case is at version 5
    And the person is held by AZ at "Hadrut"
    And the case is not disputed

    When the case worker records that AZ held the person at "Baku" on 2021-04-01, according to the ICRC
    Then the register answers 201
    And the case is at version 6
    And the person is held by AZ at "Baku"
    And the person was last seen alive on 2021-04-01
